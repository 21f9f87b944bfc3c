//! The `switchboard` binary: parses the command line and runs one component (or all of them, with
//! `up`). Each command lives in `commands/`.

mod commands;
mod demo;
mod dev;
mod memory;

use clap::Parser;

/// mimalloc rather than the system allocator: a gateway allocates and frees a little for every
/// request on every worker, and holds a buffer or two for every open connection; with glibc's
/// allocator that was an eighth of its CPU and memory that stayed fragmented after load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(memory::on_park)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run()),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> std::process::ExitCode {
    let cli = commands::Cli::parse();
    service_kit::init_tracing();
    let outcome = commands::run(cli).await;
    service_kit::trace::flush();
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

"""A two-task pipeline for the Airflow server's tests: `extract` always succeeds; `transform`
fails when the run's conf says {"fail": true}, as a real upstream schema change would."""
from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag, task


@dag(
    dag_id="demo_etl",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["demo", "ads"],
    default_args={"owner": "data-eng"},
    doc_md="Loads the daily ad spend extract and transforms it for reporting.",
)
def demo_etl():
    extract = BashOperator(task_id="extract", bash_command="echo extracting rows; echo 42 rows")

    @task
    def transform(**ctx):
        if (ctx["dag_run"].conf or {}).get("fail"):
            raise ValueError("transform failed: upstream schema changed (column 'amount' missing)")
        return 42

    extract >> transform()


demo_etl()

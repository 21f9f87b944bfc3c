// A server that speaks only the legacy MCP era (2025-11-25), built on the official TypeScript SDK
// 1.x as many third-party servers are: stateful Streamable HTTP sessions, and a tool that asks the
// user to confirm with a server-to-client `elicitation/create` request on the call's stream.
// Prints {"url": ...} on stdout once listening on a loopback port the OS picked; GET /stats says
// how many purges really ran.
//
// Usage: SWITCHBOARD_NODE_TOOLS=<installed packages> node legacy-server.mjs
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const tools = process.env.SWITCHBOARD_NODE_TOOLS;
const require = createRequire(`${tools}/package.json`);
const load = async (name) => import(pathToFileURL(require.resolve(name)).href);
const { McpServer } = await load('@modelcontextprotocol/sdk/server/mcp.js');
const { StreamableHTTPServerTransport } = await load('@modelcontextprotocol/sdk/server/streamableHttp.js');
const { ElicitResultSchema, isInitializeRequest } = await load('@modelcontextprotocol/sdk/types.js');
const { z } = await load('zod');

let purged = 0;

function archiveServer() {
  const server = new McpServer({ name: 'legacy-archive', version: '1.0.0' });
  server.registerTool(
    'purge_archive',
    {
      description: 'Deletes every object in an archive.',
      inputSchema: { archive: z.string().max(64) },
    },
    async ({ archive }, extra) => {
      const answer = await extra.sendRequest(
        {
          method: 'elicitation/create',
          params: {
            message: `Purge archive ${archive}?`,
            requestedSchema: {
              type: 'object',
              properties: { confirm: { type: 'boolean', title: 'Confirm' } },
              required: ['confirm'],
            },
          },
        },
        ElicitResultSchema,
      );
      if (answer.action === 'accept' && answer.content?.confirm === true) {
        purged += 1;
        return { content: [{ type: 'text', text: `purged ${archive}` }] };
      }
      return { content: [{ type: 'text', text: `kept ${archive}` }] };
    },
  );
  return server;
}

const sessions = new Map();

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}

const httpServer = http.createServer(async (req, res) => {
  try {
    if (req.url === '/stats') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ purged }));
      return;
    }
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    const id = req.headers['mcp-session-id'];
    let transport = id ? sessions.get(id) : undefined;
    if (!transport) {
      if (req.method !== 'POST' || !isInitializeRequest(body)) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Bad Request: No valid session ID provided' } }));
        return;
      }
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (sid) => sessions.set(sid, transport),
      });
      transport.onclose = () => sessions.delete(transport.sessionId);
      await archiveServer().connect(transport);
    }
    await transport.handleRequest(req, res, body);
  } catch (e) {
    if (!res.headersSent) res.writeHead(500);
    res.end(String(e));
  }
});

httpServer.listen(0, '127.0.0.1', () => {
  const { port } = httpServer.address();
  console.log(JSON.stringify({ url: `http://127.0.0.1:${port}/mcp` }));
});

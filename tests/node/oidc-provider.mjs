// A real OpenID Connect provider (npm oidc-provider) for the end-to-end tests, on a loopback port
// the OS picks. Each configured client stands for one caller and gets client_credentials access
// tokens as JWTs for the resource `urn:switchboard`, with its groups in the nested claim
// `realm_access.roles`. Prints {"issuer": ...} on stdout once listening.
//
// With OIDC_LOGIN_CLIENT='{"id":"switchboard-registry","users":{"rita":["security-reviewers"]}}' it
// also signs people in with the authorization code flow: a public native client (PKCE required,
// any loopback port in its redirect URI http://127.0.0.1/ui/callback), the provider's own login
// and consent pages (any password), and ID tokens that carry the user's `groups`.
//
// Usage: OIDC_CLIENTS='[{"id":"alice","secret":"s","groups":["finance"],"alg":"RS256"}]' \
//        node oidc-provider.mjs   (with SWITCHBOARD_NODE_TOOLS pointing at the installed packages)
import http from 'node:http';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const tools = process.env.SWITCHBOARD_NODE_TOOLS;
const require = createRequire(`${tools}/package.json`);
const load = async (name) => import(pathToFileURL(require.resolve(name)).href);
const { default: Provider } = await load('oidc-provider');
const jose = await load('jose');

const clients = JSON.parse(process.env.OIDC_CLIENTS ?? '[]');
const login = process.env.OIDC_LOGIN_CLIENT ? JSON.parse(process.env.OIDC_LOGIN_CLIENT) : null;
const keys = [];
for (const [alg, kid] of [['RS256', 'rs256-key'], ['ES256', 'es256-key'], ['EdDSA', 'eddsa-key']]) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  keys.push({ ...(await jose.exportJWK(privateKey)), kid, alg, use: 'sig' });
}

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  jwks: { keys },
  clients: [
    ...clients.map((c) => ({
      client_id: c.id,
      client_secret: c.secret,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
    })),
    ...(login
      ? [{
        client_id: login.id,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/ui/callback'],
        id_token_signed_response_alg: 'ES256',
      }]
      : []),
  ],
  claims: { openid: ['sub'], profile: ['name'], groups: ['groups'] },
  conformIdTokenClaims: false,
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, name: id, groups: login?.users?.[id] ?? [] }),
  }),
  features: {
    devInteractions: { enabled: Boolean(login) },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:switchboard',
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => ({
        scope: 'mcp:tools',
        audience: resource,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: clients.find((c) => c.id === client.clientId)?.alg ?? 'RS256' } },
      }),
    },
  },
  extraTokenClaims: async (ctx, token) => {
    const client = clients.find((c) => c.id === token.clientId);
    return { realm_access: { roles: client?.groups ?? [] } };
  },
});
server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);

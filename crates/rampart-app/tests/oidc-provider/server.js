// A real OpenID Connect provider (panva/oidc-provider) for Rampart's sign-in tests: started by
// the test harness as a child process, on a free port, with the clients and accounts the test
// gives it. Not a mock: discovery, JWKS, PKCE (S256 required), single-use codes, signed ID
// tokens and the userinfo endpoint are the library's own.
//
//   node server.js '<json config>'      (or the config in the OIDC_TEST_CONFIG environment variable)
//
// Config: { "host": "127.0.0.1", "port": 0,
//           "clients": [{ "client_id", "client_secret", "redirect_uris": [...] }],
//           "accounts": { "<id>": { "email", "email_verified", "name" } },
//           "client_auth_methods": [...] }   (optional: the token endpoint's client
//           authentication methods, as discovery lists them; a client may override its
//           `token_endpoint_auth_method`, default `client_secret_basic`; without
//           client_secret_basic listed, HTTP Basic at the token endpoint is refused)
// Prints one line, `listening <issuer>`, once it answers; the issuer is http://host:port.
//
// Interactions (no devInteractions): the provider sends the browser to /interaction/<uid>.
// There `?user=<id>` (or the authorization request's `login_hint`) signs that account in and
// grants the client at once; `?deny=1` ends the authorization with `error=access_denied`;
// without either, a page lists the accounts as links (for a real browser to click).
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const raw = process.argv[2] || process.env.OIDC_TEST_CONFIG || '{}';
const config = JSON.parse(raw);
const host = config.host || '127.0.0.1';
const accounts = config.accounts || {};
const clients = (config.clients || []).map((client) => ({
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  ...client,
}));

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

let provider;
const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://placeholder');
    const match = url.pathname.match(/^\/interaction\/([^/]+)$/);
    if (match && req.method === 'GET') {
      await interaction(req, res, url);
      return;
    }
    // The library takes Basic and body secrets alike; a provider whose discovery does not list
    // client_secret_basic refuses it here, as a strict one does.
    if (req.method === 'POST' && url.pathname === '/token' && config.client_auth_methods
        && !config.client_auth_methods.includes('client_secret_basic')
        && /^basic /i.test(req.headers.authorization || '')) {
      res.statusCode = 401;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ error: 'invalid_client', error_description: 'client_secret_basic is not accepted' }));
      return;
    }
    provider.callback()(req, res);
  } catch (error) {
    res.statusCode = 400;
    res.setHeader('content-type', 'text/plain');
    res.end(`interaction failed: ${error.message}`);
  }
});

async function interaction(req, res, url) {
  const details = await provider.interactionDetails(req, res);
  if (url.searchParams.get('deny')) {
    await provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'End-User aborted interaction' },
      { mergeWithLastSubmission: false },
    );
    return;
  }
  const chosen = url.searchParams.get('user') || details.params.login_hint;
  if (!chosen) {
    const links = Object.entries(accounts)
      .map(([id, a]) => `<li><a id="account-${escape(id)}" href="?user=${encodeURIComponent(id)}">` +
        `${escape(a.name || id)} &lt;${escape(a.email || '')}&gt;</a></li>`)
      .join('');
    res.statusCode = 200;
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(`<!doctype html><title>Test provider: sign in</title><h1>Test provider</h1>` +
      `<p>Sign in as:</p><ul>${links}</ul><p><a id="deny" href="?deny=1">Cancel</a></p>`);
    return;
  }
  if (!Object.hasOwn(accounts, chosen)) {
    res.statusCode = 400;
    res.setHeader('content-type', 'text/plain');
    res.end(`no such account: ${chosen}`);
    return;
  }
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId: chosen } },
    { mergeWithLastSubmission: false },
  );
}

server.listen(Number(config.port || 0), host, async () => {
  const { port } = server.address();
  const issuer = `http://${host}:${port}`;
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), use: 'sig', alg: 'RS256' };
  provider = new Provider(issuer, {
    clients,
    jwks: { keys: [jwk] },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    ...(config.client_auth_methods ? { clientAuthMethods: config.client_auth_methods } : {}),
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    // First-party clients: no consent screen, every asked scope is granted.
    async loadExistingGrant(ctx) {
      const clientId = ctx.oidc.client.clientId;
      const accountId = ctx.oidc.session.accountId;
      const existing = ctx.oidc.session.grantIdFor(clientId);
      if (existing) {
        const grant = await ctx.oidc.provider.Grant.find(existing);
        if (grant) return grant;
      }
      const grant = new ctx.oidc.provider.Grant({ clientId, accountId });
      grant.addOIDCScope('openid email profile');
      await grant.save();
      ctx.oidc.session.grantIdFor(clientId, grant.jti);
      return grant;
    },
    async findAccount(ctx, id) {
      if (!Object.hasOwn(accounts, id)) return undefined;
      const account = accounts[id];
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: account.email, email_verified: account.email_verified, name: account.name };
        },
      };
    },
  });
  provider.on('server_error', (ctx, error) => console.error('server_error', error));
  console.log(`listening ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}

// Test OpenID provider for ward's tests: panva's oidc-provider on a free loopback port.
// Prints one JSON line {"issuer": ...} on stdout when ready; control endpoints under /__test/.
import * as http from 'node:http';
import * as crypto from 'node:crypto';
import Provider from 'oidc-provider';
// One in-memory store for every provider instance, so a key change keeps sessions and refresh tokens.
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';
const adapter = createMemoryAdapter();
// stdout is the test's, and it reads one line (the issuer); oidc-provider's notices (default
// TTLs, the Node.js version) would only bury a failing test's output. Errors still go to stderr.
console.log = console.info = console.warn = () => {};
// The test that started this provider holds our stdin: when it ends, so do we.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

const AUDIENCE = process.env.WARD_AUDIENCE ?? 'ward';
const CLIENT_ID = 'ward-cli';
// ward's server signing people in from a browser: a confidential client. Its secret is a test
// client's, known to the tests; its redirect URI the one the test's ward names.
const WEB_CLIENT_ID = 'ward-web';
const WEB_CLIENT_SECRET = 'ward-web-test-secret';
const WEB_REDIRECT = process.env.WARD_WEB_REDIRECT ?? 'http://127.0.0.1:8470/ui/callback';

// Every key the provider may ever use; which are published and which signs is test state.
function gen(kid, type, opts, alg) {
  const { privateKey } = crypto.generateKeyPairSync(type, opts);
  return { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}
const ALL_KEYS = [
  gen('rsa-1', 'rsa', { modulusLength: 2048 }, 'RS256'),
  gen('rsa-2', 'rsa', { modulusLength: 2048 }, 'RS256'),
  gen('ec-1', 'ec', { namedCurve: 'P-256' }, 'ES256'),
  gen('ed-1', 'ed25519', {}, 'EdDSA'),
];
const state = {
  published: ['rsa-1', 'ec-1', 'ed-1'],
  sign: 'rsa-1',
  ttl: 300,
  accounts: new Map([
    ['alice', { groups: ['engineering', 'oncall'], amr: ['pwd', 'mfa'], acr: 'mfa' }],
    ['bob', { groups: ['engineering'], amr: ['pwd'], acr: 'pwd' }],
  ]),
};
const keyOf = (kid) => ALL_KEYS.find((k) => k.kid === kid);

function makeProvider(issuer) {
  // The signing key goes first among those published: the keystore holds only published keys.
  const keys = [state.sign, ...state.published.filter((k) => k !== state.sign)].map(keyOf);
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
    }, {
      client_id: WEB_CLIENT_ID,
      client_secret: WEB_CLIENT_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [WEB_REDIRECT],
    }],
    adapter,
    jwks: { keys },
    cookies: { keys: ['test-only-cookie-key'] },
    claims: { openid: ['sub'], profile: ['preferred_username', 'groups'] },
    features: {
      devInteractions: { enabled: false },
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => `urn:${AUDIENCE}`,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, indicator) => ({
          scope: 'ward',
          audience: indicator.replace(/^urn:/, ''),
          accessTokenTTL: state.ttl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: keyOf(state.sign).alg, kid: state.sign } },
        }),
      },
    },
    pkce: { required: () => true },
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, id) {
      const account = state.accounts.get(id);
      if (!account) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, preferred_username: id, groups: account.groups }) };
    },
    async extraTokenClaims(ctx, token) {
      const account = token.kind === 'AccessToken' && state.accounts.get(token.accountId);
      if (!account) return undefined;
      return { preferred_username: token.accountId, groups: account.groups, amr: account.amr, acr: account.acr };
    },
  });
  return provider;
}

// How long one step of `browse` may take: far longer than it ever needs.
const STEP_TIMEOUT_MS = 10_000;

// A "browser" with a cookie jar, used by the control endpoints to click through the real flows.
async function browse(url, login, { stopAt } = {}) {
  const jar = new Map();
  let method = 'GET';
  let body;
  for (let i = 0; i < 20; i += 1) {
    const res = await fetch(url, {
      method, body, redirect: 'manual',
      signal: AbortSignal.timeout(STEP_TIMEOUT_MS), // a step that hangs fails the call, not the run
      headers: {
        cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const at = pair.indexOf('=');
      jar.set(pair.slice(0, at), pair.slice(at + 1));
    }
    const location = res.headers.get('location');
    if (location) {
      await res.arrayBuffer(); // read to the end, so the connection is free for the next step
      url = new URL(location, url).href;
      if (stopAt && url.startsWith(stopAt)) return url;
      if (new URL(url).pathname.startsWith('/interaction/')) url += `?login=${encodeURIComponent(login)}`;
      method = 'GET'; body = undefined;
      continue;
    }
    const html = await res.text();
    // The device flow's forms: auto-submitted user code, then the confirmation.
    const xsrf = html.match(/name="xsrf" value="([^"]+)"/);
    const code = html.match(/name="user_code" value="([^"]+)"/);
    if (xsrf && code) {
      const confirm = html.includes('name="confirm"') ? '&confirm=yes' : '';
      method = 'POST';
      body = `xsrf=${encodeURIComponent(xsrf[1])}&user_code=${encodeURIComponent(code[1])}${confirm}`;
      url = new URL('/device', url).href;
      continue;
    }
    return { status: res.status, url, html };
  }
  throw new Error('too many steps');
}

// Signs any header/payload with one of the provider's keys: for nbf/iat/typ/claim-type cases.
function signRaw({ kid, header = {}, payload }) {
  const jwk = keyOf(kid);
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64({ alg: jwk.alg, kid, typ: 'at+jwt', ...header })}.${b64(payload)}`;
  const key = crypto.createPrivateKey({ key: jwk, format: 'jwk' });
  const sig = jwk.alg === 'EdDSA' ? crypto.sign(null, Buffer.from(input), key)
    : crypto.sign('sha256', Buffer.from(input), jwk.alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  return `${input}.${sig.toString('base64url')}`;
}

const readJson = async (req) => { let s = ''; for await (const c of req) s += c; return s ? JSON.parse(s) : {}; };

const server = http.createServer();
// PORT: a port chosen by the test (to start a provider where ward already expects one).
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  let provider = makeProvider(issuer);
  let handle = provider.callback();
  server.on('request', async (req, res) => {
    try {
      const url = new URL(req.url, issuer);
      if (url.pathname.startsWith('/__test/')) {
        const input = await readJson(req);
        let out = {};
        switch (url.pathname) {
          case '/__test/keys': // {published: [kid...], sign: kid}: a new provider instance, same port
            Object.assign(state, input); provider = makeProvider(issuer); handle = provider.callback(); break;
          case '/__test/ttl': state.ttl = input.ttl; break;
          case '/__test/account': state.accounts.set(input.name, input); break;
          case '/__test/device': out = await browse(`${issuer}/device?user_code=${encodeURIComponent(input.user_code)}`, input.login); break;
          case '/__test/authorize': out = { redirect: await browse(input.url, input.login, { stopAt: input.stop_at }) }; break;
          case '/__test/sign': out = { token: signRaw(input) }; break; // claims no real flow issues
          default: res.statusCode = 404;
        }
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(out));
        return;
      }
      const m = url.pathname.match(/^\/interaction\/([^/]+)$/);
      if (m) { // auto-approving login + consent: who signs in is the ?login= the test's browser sent
        const details = await provider.interactionDetails(req, res);
        const { prompt, params, session } = details;
        if (prompt.name === 'login') {
          const accountId = url.searchParams.get('login');
          const a = state.accounts.get(accountId);
          await provider.interactionFinished(req, res, { login: { accountId, amr: a?.amr, acr: a?.acr } }, { mergeWithLastSubmission: false });
        } else {
          const grant = details.grantId ? await provider.Grant.find(details.grantId)
            : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
          if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
          if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
          for (const [ind, sc] of Object.entries(prompt.details.missingResourceScopes ?? {})) grant.addResourceScope(ind, sc.join(' '));
          await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
        }
        return;
      }
      handle(req, res);
    } catch (e) {
      res.statusCode = 500; res.end(String(e?.stack ?? e));
    }
  });
  process.stdout.write(`${JSON.stringify({ issuer, client_id: CLIENT_ID })}\n`);
});

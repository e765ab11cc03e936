// A real OpenID Connect provider (oidc-provider 9.x, ESM only) for Marid's SSO tests. Never deployed.
//
// Usage: node tests/oidc/idp.mjs <port>
//
// The issuer is http://127.0.0.1:<port>. One confidential client comes from the environment:
//   IDP_CLIENT_ID, IDP_CLIENT_SECRET, IDP_REDIRECT_URIS (comma or space separated, byte for byte what Marid sends),
//   IDP_AUTH_METHOD (client_secret_basic by default, or client_secret_post),
//   IDP_EXTRA_CLIENTS (a JSON array of more client metadata).
// Sign-in is the built-in development interaction: any login and any password; login "alice" becomes the
// account alice with the e-mail alice@example.test (verified). IDP_EMAIL_DOMAIN changes that domain.
//
// Fault injection, for tests that must see a bad ID token refused:
//   IDP_ID_TOKEN_AUD=<x>    every ID token carries aud=<x> (register <x> through IDP_EXTRA_CLIENTS)
//   IDP_ID_TOKEN_AZP=<y>    every ID token carries azp=<y>
//   IDP_ID_TOKEN_NONCE=<z>  every ID token carries nonce=<z> instead of the one the client sent
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] || process.env.IDP_PORT || 9000);
const issuer = `http://127.0.0.1:${port}`;
const env = process.env;
const emailDomain = env.IDP_EMAIL_DOMAIN || 'example.test';

const clients = [{
  client_id: env.IDP_CLIENT_ID || 'marid',
  client_secret: env.IDP_CLIENT_SECRET || 'marid-test-secret',
  redirect_uris: (env.IDP_REDIRECT_URIS || 'http://127.0.0.1:8000/sso/callback').split(/[\s,]+/).filter(Boolean),
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: env.IDP_AUTH_METHOD || 'client_secret_basic',
}, ...JSON.parse(env.IDP_EXTRA_CLIENTS || '[]')];

// A fresh signing key and key id per run: a relying party's cached keys never match a restarted provider.
const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [{ ...jwk, kid: `test-key-${randomUUID()}`, use: 'sig', alg: 'RS256' }] },
  cookies: { keys: [`test-cookie-signing-key-${port}`] },
  // By default only public clients must use PKCE; Marid always sends S256, so demand it.
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  // Put scope claims (email, name) in the ID token too, not only at the userinfo endpoint.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${id}@${emailDomain}`, email_verified: true, name: `Test ${id}` };
      },
    };
  },
});

if (env.IDP_ID_TOKEN_AUD || env.IDP_ID_TOKEN_AZP || env.IDP_ID_TOKEN_NONCE) {
  // IdToken#issue reads this.client.clientId for aud (true in 9.x for signed, unencrypted ID tokens) and
  // merges this.extra (where the grant put the client's nonce) into the payload.
  const issue = provider.IdToken.prototype.issue;
  provider.IdToken.prototype.issue = function (opts) {
    if (opts?.use === 'idtoken') {
      if (env.IDP_ID_TOKEN_AZP) this.set('azp', env.IDP_ID_TOKEN_AZP);
      if (env.IDP_ID_TOKEN_NONCE) this.set('nonce', env.IDP_ID_TOKEN_NONCE);
      if (env.IDP_ID_TOKEN_AUD) {
        const real = this.client;
        this.client = new Proxy(real, {
          get: (target, prop) => (prop === 'clientId' ? env.IDP_ID_TOKEN_AUD : Reflect.get(target, prop, target)),
        });
      }
    }
    return issue.call(this, opts);
  };
}

provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on ${issuer}`));

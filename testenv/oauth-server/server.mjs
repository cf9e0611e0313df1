// SPDX-License-Identifier: Apache-2.0
//
// Test fixture: a real OAuth 2.0 authorization server (oidc-provider) with an
// RFC 8693 token-exchange grant, for the mcp-authz end-to-end tests.
//
// Environment:
//   PORT               required; listens on 127.0.0.1:PORT, issuer http://127.0.0.1:PORT
//   SUBJECT_JWKS_FILE  optional; public JWKS (ES256) of a trusted third-party issuer
//                      whose JWTs are accepted as subject tokens
//   SUBJECT_ISSUER     optional; the `iss` those JWTs must carry (unset: not checked)
//   EXCHANGE_TTL       optional; expires_in (seconds) of exchanged tokens, default 300
//   ACCESS_TOKEN_TTL   optional; expires_in (seconds) of authorization_code and
//                      refresh_token access tokens, default 3600
//   REFRESH_TOKEN_TTL  optional; lifetime (seconds) of refresh tokens, after which
//                      a refresh is refused with invalid_grant (default: oidc-provider's)
//   LOGIN_REDIRECT_URIS  optional, comma-separated; when set, registers the login
//                      client (mcp-authz logging users in through this server as
//                      its upstream IdP): code + PKCE S256, refresh tokens always
//                      issued and rotated, consent auto-granted
//   LOGIN_CLIENT_ID    optional; that client's id, default `mcp-authz`
//   LOGIN_CLIENT_SECRET  optional; its client_secret_basic secret, default `mcp-authz-secret`
//
// Users log in through the devInteractions form with any login and password;
// the login becomes `sub`, `<login>@example.com` its email and `E-<login>` its
// `employee_id` (in the ID token).
//
// stdout carries exactly one line, `ready <port>`; all logging goes to stderr.
// Test-only endpoints:
//   GET  /test/exchanges   log of token-exchange requests
//   GET  /test/grants      log of every /token request: {grant_type, client_id, outcome}
//   POST /test/reset       clears both logs and the token endpoint fault
//   POST /test/fail-token-endpoint?status=503  (or JSON/form {"status": 503})
//                          /token answers that status with temporarily_unavailable
//                          until called again with status 0

import { readFileSync } from 'node:fs';
import http from 'node:http';

import { createLocalJWKSet, jwtVerify } from 'jose';
import Provider, { errors } from 'oidc-provider';

// oidc-provider prints its notices with console.info (stdout): keep stdout clean.
console.log = console.info = console.error;

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const TT_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const TT_JWT = 'urn:ietf:params:oauth:token-type:jwt';

const port = Number.parseInt(process.env.PORT ?? '', 10);
if (!(port > 0 && port < 65536)) {
  console.error('server.mjs: PORT must be set to a TCP port number');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const exchangeTtl = Number.parseInt(process.env.EXCHANGE_TTL || '300', 10);
if (!(exchangeTtl > 0)) {
  console.error('server.mjs: EXCHANGE_TTL must be a positive number of seconds');
  process.exit(2);
}
const accessTokenTtl = Number.parseInt(process.env.ACCESS_TOKEN_TTL || '3600', 10);
if (!(accessTokenTtl > 0)) {
  console.error('server.mjs: ACCESS_TOKEN_TTL must be a positive number of seconds');
  process.exit(2);
}
const refreshTokenTtl = process.env.REFRESH_TOKEN_TTL
  ? Number.parseInt(process.env.REFRESH_TOKEN_TTL, 10)
  : undefined;
if (refreshTokenTtl !== undefined && !(refreshTokenTtl > 0)) {
  console.error('server.mjs: REFRESH_TOKEN_TTL must be a positive number of seconds');
  process.exit(2);
}
const subjectIssuer = process.env.SUBJECT_ISSUER;
const subjectJwks = process.env.SUBJECT_JWKS_FILE
  ? createLocalJWKSet(JSON.parse(readFileSync(process.env.SUBJECT_JWKS_FILE, 'utf8')))
  : undefined;

const loginRedirectUris = (process.env.LOGIN_REDIRECT_URIS ?? '')
  .split(',').map((uri) => uri.trim()).filter(Boolean);
const loginClientId = process.env.LOGIN_CLIENT_ID || 'mcp-authz';

function loginClients() {
  if (!loginRedirectUris.length) return [];
  return [{
    client_id: loginClientId,
    client_secret: process.env.LOGIN_CLIENT_SECRET || 'mcp-authz-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: loginRedirectUris,
    scope: 'openid offline_access profile email read',
  }];
}

// Any login/password is accepted by devInteractions; the login is the account.
async function findAccount(_ctx, sub) {
  return {
    accountId: sub,
    claims: async () => ({
      sub,
      name: sub,
      preferred_username: sub,
      email: `${sub}@example.com`,
      email_verified: true,
      // A stable id other than sub, for upstreams[].oidc.subjectClaim.
      employee_id: `E-${sub}`,
    }),
  };
}

// Consent is implied for the login client: its grant always covers what it asks.
async function loadExistingGrant(ctx) {
  const { oidc } = ctx;
  const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
  let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
  if (oidc.client.clientId !== loginClientId) return grant;

  if (grant?.accountId !== oidc.session.accountId) {
    grant = new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
  }
  grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
  grant.addOIDCClaims([...oidc.requestParamClaims]);
  for (const [indicator, resourceServer] of Object.entries(oidc.resourceServers ?? {})) {
    const scopes = [...oidc.requestParamScopes].filter((s) => resourceServer.scopes.has(s));
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  await grant.save();
  return grant;
}

const provider = new Provider(issuer, {
  clients: [
    ...loginClients(),
    {
      client_id: 'exchanger',
      client_secret: 'exchanger-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [TOKEN_EXCHANGE, 'client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'read write tools:call',
    },
    {
      client_id: 'upstream-app',
      client_secret: 'upstream-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'read write tools:call',
    },
  ],
  scopes: ['openid', 'offline_access', 'read', 'write', 'tools:call'],
  claims: {
    openid: ['sub', 'employee_id'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  // Scope-requested claims go into the ID token too, not only to userinfo.
  conformIdTokenClaims: false,
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
  },
  findAccount,
  loadExistingGrant,
  pkce: { required: () => true },
  // Refresh tokens without offline_access (and without prompt=consent), rotated
  // on every use, independent of the login session.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  expiresWithSession: async () => false,
  ttl: {
    AccessToken: accessTokenTtl,
    ClientCredentials: 3600,
    ...(refreshTokenTtl === undefined ? {} : { RefreshToken: refreshTokenTtl }),
  },
  // Exchanged tokens carry their subject in `extra`; introspection spreads it
  // into the response.
  extraTokenClaims: async (_ctx, token) => token.extra,
});

const exchanges = [];

async function resolveSubject(subjectToken) {
  for (const Model of [provider.ClientCredentials, provider.AccessToken]) {
    const token = await Model.find(subjectToken);
    if (token?.isValid) {
      return { kind: 'upstream', subject: token.accountId ?? token.clientId };
    }
  }
  if (subjectJwks && subjectToken.split('.').length === 3) {
    try {
      const { payload } = await jwtVerify(subjectToken, subjectJwks, {
        issuer: subjectIssuer,
        algorithms: ['ES256'],
        requiredClaims: ['exp', 'sub'],
      });
      return { kind: 'jwt', subject: payload.sub };
    } catch (err) {
      console.error(`token-exchange: subject JWT rejected: ${err.code ?? err.message}`);
    }
  }
  return undefined;
}

function invalid(ErrorClass, description) {
  const err = new ErrorClass(description);
  err.error_description = description;
  return err;
}

async function tokenExchange(ctx) {
  const { params, client } = ctx.oidc;
  const record = {
    client_id: client.clientId,
    auth_scheme: ctx.get('authorization').split(' ')[0] || null,
    subject_kind: null,
    subject: null,
    subject_token_type: params.subject_token_type ?? null,
    requested_token_type: params.requested_token_type ?? null,
    audience: params.audience ?? null,
    scope: params.scope ?? null,
    resource: params.resource ?? null,
    outcome: 'ok',
    issued_token: null,
  };
  exchanges.push(record);

  try {
    if (!params.subject_token) {
      throw invalid(errors.InvalidRequest, 'missing required parameter: subject_token');
    }
    if (!params.subject_token_type) {
      throw invalid(errors.InvalidRequest, 'missing required parameter: subject_token_type');
    }
    if (![TT_ACCESS_TOKEN, TT_JWT].includes(params.subject_token_type)) {
      throw invalid(errors.InvalidRequest, 'unsupported subject_token_type');
    }
    if (params.requested_token_type && params.requested_token_type !== TT_ACCESS_TOKEN) {
      throw invalid(errors.InvalidRequest, 'unsupported requested_token_type');
    }

    const allowed = new Set(client.scope.split(' '));
    const denied = params.scope?.split(' ').filter((s) => !allowed.has(s));
    if (denied?.length) {
      throw new errors.InvalidScope('requested scope is not allowed', denied.join(' '));
    }

    const subject = await resolveSubject(params.subject_token);
    if (!subject) {
      throw invalid(errors.InvalidGrant, 'subject_token is invalid, expired or not trusted');
    }
    record.subject_kind = subject.kind;
    record.subject = subject.subject;

    const token = new provider.ClientCredentials({
      client,
      scope: params.scope || undefined,
      expiresIn: exchangeTtl,
      extra: { sub: subject.subject, subject_kind: subject.kind },
    });
    if (params.audience) token.setAudience(params.audience);
    const accessToken = await token.save();
    record.issued_token = accessToken;

    ctx.body = {
      access_token: accessToken,
      issued_token_type: TT_ACCESS_TOKEN,
      token_type: 'Bearer',
      expires_in: token.expiration,
      ...(token.scope ? { scope: token.scope } : undefined),
    };
  } catch (err) {
    record.outcome = err.error ?? 'server_error';
    throw err;
  } finally {
    console.error(`token-exchange: ${JSON.stringify({ ...record, issued_token: undefined })}`);
  }
}

provider.registerGrantType(TOKEN_EXCHANGE, tokenExchange, [
  'subject_token', 'subject_token_type', 'requested_token_type', 'audience',
  'scope', 'resource', 'actor_token', 'actor_token_type',
]);

const grants = [];

function basicAuthUser(authorization) {
  const [scheme, value] = (authorization ?? '').split(' ');
  if (scheme?.toLowerCase() !== 'basic' || !value) return undefined;
  try {
    return decodeURIComponent(Buffer.from(value, 'base64').toString().split(':')[0]);
  } catch {
    return undefined;
  }
}

function recordGrant(ctx, outcome) {
  const body = ctx.oidc?.body ?? ctx.request.body ?? {};
  grants.push({
    grant_type: ctx.oidc?.params?.grant_type ?? body.grant_type ?? null,
    client_id: ctx.oidc?.client?.clientId ?? body.client_id
      ?? basicAuthUser(ctx.get('authorization')) ?? null,
    outcome,
  });
}

provider.on('grant.success', (ctx) => recordGrant(ctx, 'ok'));
provider.on('grant.error', (ctx, err) => recordGrant(ctx, err.error ?? 'server_error'));
provider.on('server_error', (ctx, err) => {
  console.error('server_error:', err);
  if (ctx.oidc?.route === 'token') recordGrant(ctx, 'server_error');
});

const oidc = provider.callback();

let tokenFaultStatus = 0;

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', reject);
  });
}

async function requestedStatus(req, url) {
  if (url.searchParams.has('status')) return url.searchParams.get('status');
  const body = await readBody(req);
  if ((req.headers['content-type'] ?? '').includes('json')) {
    return body ? JSON.parse(body).status : undefined;
  }
  return new URLSearchParams(body).get('status');
}

async function setTokenFault(req, res, url) {
  const status = Number.parseInt(await requestedStatus(req, url) ?? '', 10);
  if (!(status === 0 || (status >= 400 && status < 600))) {
    sendJson(res, 400, { error: 'status must be 0 or an HTTP error status' });
    return;
  }
  tokenFaultStatus = status;
  res.writeHead(204).end();
}

// The injected failure is a /token outcome too, so it is logged like the others.
async function failTokenRequest(req, res) {
  const body = new URLSearchParams(await readBody(req));
  grants.push({
    grant_type: body.get('grant_type'),
    client_id: body.get('client_id') ?? basicAuthUser(req.headers.authorization) ?? null,
    outcome: 'temporarily_unavailable',
  });
  sendJson(res, tokenFaultStatus, { error: 'temporarily_unavailable' });
}

function sendJson(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(value));
}

const testRoutes = {
  'GET /test/exchanges': (_req, res) => sendJson(res, 200, exchanges),
  'GET /test/grants': (_req, res) => sendJson(res, 200, grants),
  'POST /test/reset': (_req, res) => {
    exchanges.length = 0;
    grants.length = 0;
    tokenFaultStatus = 0;
    res.writeHead(204).end();
  },
  'POST /test/fail-token-endpoint': setTokenFault,
};

function handleOwn(handler, req, res, url) {
  Promise.resolve(handler(req, res, url)).catch((err) => {
    console.error(`${req.method} ${url.pathname}:`, err);
    if (!res.headersSent) sendJson(res, 400, { error: String(err.message ?? err) });
  });
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, issuer);
  const testRoute = testRoutes[`${req.method} ${url.pathname}`];
  if (testRoute) {
    handleOwn(testRoute, req, res, url);
  } else if (tokenFaultStatus && url.pathname === '/token') {
    handleOwn(failTokenRequest, req, res, url);
  } else {
    oidc(req, res);
  }
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${port}\n`);
});

process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});

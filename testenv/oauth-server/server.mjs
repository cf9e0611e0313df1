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
//
// stdout carries exactly one line, `ready <port>`; all logging goes to stderr.
// Test-only endpoints: GET /test/exchanges (log of token-exchange requests),
// POST /test/reset (clears it).

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
const subjectIssuer = process.env.SUBJECT_ISSUER;
const subjectJwks = process.env.SUBJECT_JWKS_FILE
  ? createLocalJWKSet(JSON.parse(readFileSync(process.env.SUBJECT_JWKS_FILE, 'utf8')))
  : undefined;

const provider = new Provider(issuer, {
  clients: [
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
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
  },
  ttl: { AccessToken: 3600, ClientCredentials: 3600 },
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
provider.on('server_error', (_ctx, err) => console.error('server_error:', err));

const oidc = provider.callback();

const server = http.createServer((req, res) => {
  const { pathname } = new URL(req.url, issuer);
  if (req.method === 'GET' && pathname === '/test/exchanges') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(exchanges));
  } else if (req.method === 'POST' && pathname === '/test/reset') {
    exchanges.length = 0;
    res.writeHead(204).end();
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

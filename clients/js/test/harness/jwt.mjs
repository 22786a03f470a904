// Owns: the HS256 tokens the tests sign for hubs in jwt mode (node:crypto; what an identity
// provider would issue).

import { createHmac } from 'node:crypto';

const b64url = (data) => Buffer.from(data).toString('base64url');

/** A signed token for `claims` (`iat`/`exp` added from `ttlMs` unless given). */
export function signToken(secret, claims, ttlMs = 60000) {
  const now = Math.floor(Date.now() / 1000);
  const body = { iat: now, exp: now + Math.max(1, Math.round(ttlMs / 1000)), ...claims };
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64url(JSON.stringify(body));
  const sig = createHmac('sha256', secret).update(`${head}.${payload}`).digest('base64url');
  return `${head}.${payload}.${sig}`;
}

import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header that carries an HTTP task's signature. */
export const SIGNATURE_HEADER = 'pgtq-signature';

/**
 * `t=<unix ms>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the time is signed with the
 * body, so a receiver can refuse an old request replayed.
 */
export function signBody(secret: string, body: string, at = Date.now()): string {
  return `t=${at},v1=${hmac(secret, `${at}.${body}`)}`;
}

/**
 * Whether `header` (the `pgtq-signature` a worker sent) signs `body` (the raw
 * request body, as received) with `secret`, within `toleranceMs` of now.
 */
export function verifyHttpSignature(
  secret: string,
  header: string | undefined,
  body: string | Buffer,
  options: { toleranceMs?: number; now?: number } = {},
): boolean {
  const parts = new Map(
    (header ?? '').split(',').map((part) => {
      const at = part.indexOf('=');
      return [part.slice(0, at).trim(), part.slice(at + 1).trim()] as const;
    }),
  );
  const at = Number(parts.get('t'));
  const signature = parts.get('v1') ?? '';
  if (!Number.isSafeInteger(at) || !/^[0-9a-f]{64}$/.test(signature)) return false;
  if (Math.abs((options.now ?? Date.now()) - at) > (options.toleranceMs ?? 300_000)) return false;
  const expected = hmac(secret, `${at}.${body.toString()}`);
  return timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(signature, 'hex'));
}

function hmac(secret: string, text: string): string {
  return createHmac('sha256', secret).update(text).digest('hex');
}

/**
 * What a person is told when the endpoint they gave does not take the
 * verification event (src/core/notify/channels/webhook.ts): that it is not
 * allowed or could not be reached, never which address its name resolved
 * to, nor that it resolved inside the network. Real sockets on loopback;
 * the detail is kept for the server's log.
 */
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { deliverWebhookNow } from '../../src/core/notify/channels/webhook.ts';

const SECRET = `whsec_${Buffer.from('verification-message-test-secret').toString('base64')}`;
const EVENT = { type: 'subscription.verification', data: {} };
const INTERNAL = /\b127\.\d+\.\d+\.\d+\b|::1\b|\b10\.\d+\.\d+\.\d+|\b192\.168\.|resolve|private|ECONN|getaddrinfo/i;

/** A loopback port that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('the verification event’s failure message', () => {
  it('says the endpoint could not be reached, not the address its name resolved to', async () => {
    const port = await closedPort();
    // an allowed name (CANDOR_WEBHOOK_ALLOW_HOSTS) whose address refuses the connection: the socket error names the address
    const answer = await deliverWebhookNow({ allowHosts: ['localhost'] }, `http://localhost:${port}/hook`, SECRET, 'verify_1', EVENT);
    expect(answer.ok).toBe(false);
    if (answer.ok) return;
    expect(answer.message).toBe('it is not allowed or could not be reached (webhooks go only to https endpoints on public addresses)');
    expect(answer.message).not.toMatch(INTERNAL);
    expect(answer.detail).toMatch(/ECONNREFUSED/);
  });

  it('says the same of a name that resolves inside the network, which is refused before connecting', async () => {
    // the machine's own name resolves to a loopback address here (tests/security/ssrf.test.ts checks that it is refused)
    const port = await closedPort();
    for (const url of [`https://${hostname()}:${port}/`, `https://localhost.:${port}/`, `https://no-such-host.invalid:${port}/`]) {
      const answer = await deliverWebhookNow({ allowHosts: [] }, url, SECRET, 'verify_2', EVENT);
      expect(answer.ok, url).toBe(false);
      if (answer.ok) continue;
      expect(answer.message, url).toBe(
        'it is not allowed or could not be reached (webhooks go only to https endpoints on public addresses)',
      );
      expect(answer.message, url).not.toMatch(INTERNAL);
    }
  });
});

/**
 * Fakes of the two chat webhooks Candor posts to besides Slack's, on one loopback server:
 * - Microsoft Teams Workflows: POST /workflows/<id>/triggers/manual/paths/invoke with an Adaptive
 *   Card in a `message` envelope; answers 202 Accepted with no body (as the HTTP trigger does), or
 *   404 for a workflow that was deleted;
 * - Discord: POST /api/webhooks/<id>/<token>[?wait=true] with `embeds`; with wait=true answers 200
 *   and the created message (its `id`), otherwise 204; 404 `{"message": "Unknown Webhook",
 *   "code": 10015}` for a deleted webhook; a rate-limit storm answers 429 with `Retry-After` and
 *   `{"retry_after": <seconds>, "global": false}` as Discord does.
 * Both check the shape of what they are sent the way the real services refuse bad payloads (400).
 */
import {
  type FakeResponse,
  type FaultControls,
  Faults,
  faultControls,
  type IncomingFakeRequest,
  type RecordedRequest,
  RequestLog,
  reply,
  startLoopbackServer,
  systemClock,
  waitUntil,
} from './common.ts';

export interface ChatPost {
  kind: 'teams' | 'discord';
  path: string;
  query: Record<string, string>;
  payload: Record<string, unknown>;
  status: number;
}

export interface ChatWebhooksFake extends FaultControls {
  url: string;
  /** the host:port, for CANDOR_WEBHOOK_ALLOW_HOSTS */
  host: string;
  teamsUrl(id: string): string;
  discordUrl(id: string, token?: string): string;
  /** accepted posts, in order */
  posts: ChatPost[];
  /** every request, refused or accepted */
  requests: RecordedRequest[];
  /** delete a webhook: later posts to it answer 404 */
  remove(url: string): void;
  rateLimitStorm(ms: number, retryAfterSeconds: number): void;
  waitFor(count: number, timeoutMs?: number): Promise<void>;
  reset(): void;
  close(): Promise<void>;
}

const TEAMS = /^\/workflows\/([\w-]+)\/triggers\/manual\/paths\/invoke$/;
const DISCORD = /^\/api\/webhooks\/(\d+)\/([\w-]+)$/;

function teamsShapeProblem(body: Record<string, unknown>): string | null {
  if (body.type !== 'message') return 'type must be "message"';
  const attachments = body.attachments;
  if (!Array.isArray(attachments) || attachments.length === 0) return 'attachments missing';
  const card = (attachments[0] as { contentType?: string; content?: { type?: string; body?: unknown } }) ?? {};
  if (card.contentType !== 'application/vnd.microsoft.card.adaptive') return 'not an adaptive card';
  if (card.content?.type !== 'AdaptiveCard' || !Array.isArray(card.content.body)) return 'card has no body';
  return null;
}

function discordShapeProblem(body: Record<string, unknown>): string | null {
  const embeds = body.embeds;
  if (!body.content && (!Array.isArray(embeds) || embeds.length === 0)) return 'Cannot send an empty message';
  if (Array.isArray(embeds)) {
    for (const e of embeds as { title?: string; description?: string }[]) {
      if ((e.title?.length ?? 0) > 256) return 'embeds.0.title: Must be 256 or fewer in length.';
      if ((e.description?.length ?? 0) > 4096) return 'embeds.0.description: Must be 4096 or fewer in length.';
    }
  }
  return null;
}

export async function startChatWebhooksFake(): Promise<ChatWebhooksFake> {
  const clock = systemClock;
  const log = new RequestLog(clock, true);
  const faults = new Faults(clock);
  const posts: ChatPost[] = [];
  const removed = new Set<string>();
  let messageSeq = 1_100_000_000_000_000_000n;

  async function handle(request: IncomingFakeRequest): Promise<FakeResponse> {
    const teams = TEAMS.exec(request.path);
    const discord = DISCORD.exec(request.path);
    if (request.method !== 'POST' || (!teams && !discord)) return reply(404, { message: '404: Not Found', code: 0 }, 'not-found');
    const kind = teams ? 'teams' : 'discord';
    if (removed.has(request.path)) {
      return kind === 'teams'
        ? reply(404, { error: { code: 'WorkflowNotFound', message: 'The workflow could not be found.' } }, 'gone')
        : reply(404, { message: 'Unknown Webhook', code: 10015 }, 'gone');
    }
    const fault = faults.take();
    if (fault?.kind === 'fail') return reply(fault.status, 'injected failure', `fault:${fault.reason}`);
    if (fault?.kind === 'rate-limit-storm') {
      return reply(429, { message: 'You are being rate limited.', retry_after: fault.retryAfterSeconds, global: false }, 'rate-limited', {
        'retry-after': String(fault.retryAfterSeconds),
      });
    }
    let payload: Record<string, unknown>;
    try {
      payload = JSON.parse(request.rawBody) as Record<string, unknown>;
    } catch {
      return reply(400, { message: 'The request body contains invalid JSON.', code: 50109 }, 'bad-json');
    }
    const problem = kind === 'teams' ? teamsShapeProblem(payload) : discordShapeProblem(payload);
    if (problem) return reply(400, { message: problem, code: 50035 }, 'bad-shape');
    const query = Object.fromEntries(request.query);
    if (kind === 'teams') {
      posts.push({ kind, path: request.path, query, payload, status: 202 });
      // posted, but the connection is destroyed before the answer (loseResponseNext)
      if (faults.takeLostResponse()) return { kind: 'drop', outcome: 'fault:lost-response' };
      return reply(202, undefined, 'ok');
    }
    const wait = request.query.get('wait') === 'true';
    posts.push({ kind, path: request.path, query, payload, status: wait ? 200 : 204 });
    messageSeq += 1n;
    if (faults.takeLostResponse()) return { kind: 'drop', outcome: 'fault:lost-response' };
    return wait ? reply(200, { id: String(messageSeq), type: 0, webhook_id: discord?.[1] }, 'ok') : reply(204, undefined, 'ok');
  }

  const server = await startLoopbackServer(handle, log, () => faults.latencyMs);
  const host = new URL(server.url).host;
  return {
    url: server.url,
    host,
    teamsUrl: (id) =>
      `${server.url}/workflows/${id}/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=s3cr3t${id}`,
    discordUrl: (id, token = `tok_${id}_abcdefghijklmnopqrstuvwxyz`) => `${server.url}/api/webhooks/${id}/${token}`,
    posts,
    requests: log.entries,
    remove(url) {
      removed.add(new URL(url).pathname);
    },
    ...faultControls(faults),
    rateLimitStorm: (ms, retryAfterSeconds) => faults.rateLimitStorm(ms, retryAfterSeconds),
    waitFor: (count, timeoutMs = 10_000) => waitUntil(() => posts.length >= count, timeoutMs, `${count} chat post(s)`),
    reset() {
      posts.length = 0;
      removed.clear();
      log.clear();
      faults.reset();
    },
    close: () => server.close(),
  };
}

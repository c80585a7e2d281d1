import type { Db } from '../../../db/client.ts';
import type { Keys } from '../notify/recipients.ts';
import type { UrlPolicy } from '../notify/safe-url.ts';
import type { Topic } from './topics.ts';

/** What the subscription flows need from the running app. */
export interface SubscriptionContext {
  db: Db;
  keys: Keys;
  now: Date;
  publicUrl: URL;
  organisation: string;
  /** ids from content/components.yaml */
  componentIds: readonly string[];
  webhookPolicy: UrlPolicy;
  ip: string | null;
  /** the server's log, for details a visitor must not be shown */
  log: (line: string) => void;
}

export interface Choices {
  topics: Topic[];
  /** empty: every component */
  components: string[];
  organisation: string | null;
}

export type Result<T extends object = object> = ({ ok: true } & T) | { ok: false; message: string };

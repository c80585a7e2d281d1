import type { Database } from '../../../db/engine/types.ts';
import type { AuditInput } from '../audit/log.ts';
import type { Keys } from '../notify/recipients.ts';
import type { UrlPolicy } from '../notify/safe-url.ts';
import type { Topic } from './topics.ts';

/** What the subscription flows need from the running app. */
export interface SubscriptionContext {
  /** the app's database handle (db/engine/types.ts) */
  database: Database;
  keys: Keys;
  now: Date;
  publicUrl: URL;
  organisation: string;
  /** what may narrow a subscription: the ids of content/components.yaml and each group's `group:<id>` (src/core/content/groups.ts) */
  componentIds: readonly string[];
  webhookPolicy: UrlPolicy;
  ip: string | null;
  /** the server's log, for details a visitor must not be shown */
  log: (line: string) => void;
}

export interface Choices {
  topics: Topic[];
  /** service ids and `group:<id>`s; empty: every component */
  components: string[];
  organisation: string | null;
}

export type Result<T extends object = object> = ({ ok: true } & T) | { ok: false; message: string };

/** Who a staff read or change of the directory is audited as: the audit entry but for what was done. */
export type StaffAudit = Omit<AuditInput, 'action' | 'target' | 'summary'>;

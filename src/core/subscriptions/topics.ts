/** What a customer can follow. */
export const topics = ['incidents', 'maintenance', 'subprocessors', 'docs'] as const;
export type Topic = (typeof topics)[number];

export const topicLabels: Record<Topic, string> = {
  incidents: 'Incidents and outages',
  maintenance: 'Scheduled maintenance',
  subprocessors: 'Subprocessor changes',
  docs: 'Changes to security and privacy documents',
};

export function isTopic(value: string): value is Topic {
  return (topics as readonly string[]).includes(value);
}

/**
 * Component groups: the `group` name each service in content/components.yaml
 * may carry gives it a group whose id is that name as a slug ("AI" → `ai`).
 * The id is what a subscription to the whole group stores
 * (subscriber_topics.component = `group:<id>`); wherever groups and services
 * share one list of ids (/api/v2's components) a group is `group:<id>` too,
 * since a group may share its name with a service (Integrations). Renaming a
 * group changes its id. A group's state is the worst state of its members.
 */

/** What a group needs of a service: the fields of content/components.yaml. */
interface Member {
  id: string;
  name: string;
  group?: string | undefined;
}

export interface ComponentGroup<C extends Member = Member> {
  /** the group's name as a slug: lower-case words joined by hyphens */
  id: string;
  name: string;
  /** its services, in the order of content/components.yaml */
  components: C[];
}

/** A group's id from its name: lower-case letters and digits, words joined by hyphens ("" when the name has none). */
export function groupIdOf(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** The prefix of a subscription to a whole group in subscriber_topics.component. */
export const GROUP_TOPIC_PREFIX = 'group:';

/** What subscriber_topics.component holds for a subscription to the whole group. */
export const groupTopicKey = (groupId: string) => `${GROUP_TOPIC_PREFIX}${groupId}`;

/** The groups, in the order their first service appears; services without a group belong to none. */
export function componentGroups<C extends Member>(components: readonly C[]): ComponentGroup<C>[] {
  const groups = new Map<string, ComponentGroup<C>>();
  for (const component of components) {
    if (!component.group) continue;
    const id = groupIdOf(component.group);
    const group = groups.get(id) ?? { id, name: component.group, components: [] };
    group.components.push(component);
    groups.set(id, group);
  }
  return [...groups.values()];
}

/** The group id of a service, or null when it has none. */
export function groupOf(component: Member): string | null {
  return component.group ? groupIdOf(component.group) : null;
}

/**
 * The subscription keys that follow any of these services: each group one of them belongs to, as
 * `group:<id>`. The fan-out matches a subscriber of a group when any affected service is in it.
 */
export function groupTopicKeysFor(components: readonly Member[], componentIds: readonly string[]): string[] {
  const keys = new Set<string>();
  for (const id of componentIds) {
    const component = components.find((c) => c.id === id);
    const group = component ? groupOf(component) : null;
    if (group) keys.add(groupTopicKey(group));
  }
  return [...keys];
}

/**
 * What a subscriber may follow narrowly: each service's id and each group's `group:<id>`, for
 * checking a sign-up's or a manage form's choices.
 */
export function followableIds(components: readonly Member[]): string[] {
  return [...components.map((c) => c.id), ...componentGroups(components).map((g) => groupTopicKey(g.id))];
}

/** Only a path inside the console, never another origin ("//evil", "/\\evil", "https:"). */
export function safeConsolePath(next: string | null | undefined, fallback = '/console'): string {
  if (!next || !/^\/console(?:[/?#]|$)/.test(next) || /[\\\s]/.test(next) || next.startsWith('//')) return fallback;
  return next;
}

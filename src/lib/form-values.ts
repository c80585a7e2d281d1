/** The fields of the form that was just posted, to show it again after a preview or an error. */
export async function postedValues(request: Request): Promise<Record<string, string>> {
  if (request.method !== 'POST') return {};
  try {
    const form = await request.clone().formData();
    return Object.fromEntries([...form.entries()].filter((e): e is [string, string] => typeof e[1] === 'string'));
  } catch {
    return {};
  }
}

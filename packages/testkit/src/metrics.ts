/**
 * A server's metric from its /metrics page: an unlabelled one, or the sum of a labelled one's
 * series whose labels include `labels`.
 */
export async function serverMetric(httpUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  let sum: number | undefined;
  for (const match of text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\d+(?:\\.\\d+)?(?:e[+-]?\\d+)?)$`, 'gm'))) {
    const have = (match[1] ?? '').split(',');
    if (wanted.every((label) => have.includes(label))) sum = (sum ?? 0) + Number(match[2]);
  }
  if (sum === undefined) throw new Error(`no metric ${name}`);
  return sum;
}

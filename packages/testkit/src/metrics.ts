/** A counter or gauge of a Parley server's /metrics (Prometheus text), by name (without labels). */
export async function serverMetric(httpUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const match = new RegExp(`^${name} (\\d+(?:\\.\\d+)?)`, 'm').exec(text);
  if (!match) throw new Error(`no metric ${name}`);
  return Number(match[1]);
}

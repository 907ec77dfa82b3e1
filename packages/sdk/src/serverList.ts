/**
 * The servers a client may reach: one URL (a server, or a cluster behind a load balancer) or the
 * nodes of a cluster, any of which resumes a session. They are tried in turn: a failed connect or
 * a lost connection moves on to the next one.
 */
export class ServerList {
  private index = 0;

  constructor(private readonly urls: readonly string[]) {
    if (urls.length === 0 || urls.some((url) => typeof url !== 'string' || url.length === 0)) {
      throw new TypeError('profile.server must be a URL or a non-empty list of URLs');
    }
  }

  get current(): string {
    return this.urls[this.index]!;
  }

  get size(): number {
    return this.urls.length;
  }

  /** The one in use failed or was lost: the next one is used from now on. */
  moveOn(): void {
    this.index = (this.index + 1) % this.urls.length;
  }
}

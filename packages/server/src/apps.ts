/**
 * The one copy of the apps' configurations, at start and from each reloaded configuration. The
 * room service, the server API and the webhook dispatcher read it on each use; the dispatcher
 * also hears of each change.
 */
import { EventEmitter } from 'node:events';
import { APP_SIGN_PATTERN } from '@parley/protocol';
import { SERVER_SECRET_PATTERN, type AppConfig } from './config.js';

export function checkApp(app: AppConfig): void {
  if (!Number.isInteger(app.appID) || app.appID < 0 || app.appID > 0xffffffff) throw new Error(`appID ${app.appID} is not a uint32`);
  if (!APP_SIGN_PATTERN.test(app.appSign)) throw new Error(`app ${app.appID}: appSign must be 64 hex characters`);
  if (!SERVER_SECRET_PATTERN.test(app.serverSecret)) throw new Error(`app ${app.appID}: serverSecret must be 32 ASCII characters`);
}

export class AppRegistry {
  /** Told of the apps after each change. */
  readonly observer = new EventEmitter<{ changed: [AppConfig[]] }>();
  private readonly apps = new Map<number, AppConfig>();
  /** What else must hold of a configuration's apps (e.g. valid callbacks), checked before it applies. */
  private readonly checks: Array<(apps: AppConfig[]) => void> = [];
  /** Every app configured since start: a removed app's calls go on (they may still resume). */
  private readonly servedApps = new Set<number>();

  /** Throws if an app is invalid. */
  constructor(apps: AppConfig[]) {
    this.replace(apps);
  }

  /**
   * The apps of a reloaded configuration; nothing changes if one is invalid (it throws). A new app
   * is served, changed secrets apply to the next logins, tokens and API calls, and a removed app
   * takes no new logins while the calls of its users go on (they may still resume).
   */
  replace(apps: AppConfig[]): void {
    apps.forEach(checkApp);
    for (const check of this.checks) check(apps);
    this.apps.clear();
    for (const app of apps) {
      this.apps.set(app.appID, app);
      this.servedApps.add(app.appID);
    }
    this.observer.emit('changed', this.list());
  }

  /** Adds a check that a configuration must pass (it throws if not) before it applies. */
  addCheck(check: (apps: AppConfig[]) => void): void {
    this.checks.push(check);
  }

  get(appID: number): AppConfig | undefined {
    return this.apps.get(appID);
  }

  list(): AppConfig[] {
    return [...this.apps.values()];
  }

  /** Configured now or earlier since start. */
  wasServed(appID: number): boolean {
    return this.servedApps.has(appID);
  }
}

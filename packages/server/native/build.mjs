/**
 * Builds the media fast path's native addon (build/Release/fastpath.node) from source with node-gyp
 * and the machine's compiler. When it cannot be built, the server forwards with its TypeScript path
 * and says so at startup: this script never fails the install. Skips the build when the addon is
 * newer than its sources.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const addon = join(root, 'build', 'Release', 'fastpath.node');
const sources = ['native/fastpath.cc', 'binding.gyp'].map((file) => join(root, file));
const mtime = (file) => statSync(file).mtimeMs;
if (existsSync(addon) && sources.every((file) => mtime(file) <= mtime(addon))) process.exit(0);

// npm's own node-gyp: npm scripts name it; else the one beside this Node's npm, else one on the PATH.
const prefix = dirname(dirname(process.execPath));
const bundled = join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const gyp = process.env.npm_config_node_gyp ?? (existsSync(bundled) ? bundled : undefined);
const [command, args] = gyp ? [process.execPath, [gyp]] : ['node-gyp', []];
// Node's headers where this Node is installed (Debian's and the release tarballs' layout): nothing is downloaded.
const nodedir = existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
const result = spawnSync(command, [...args, 'rebuild', ...nodedir], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (result.status === 0) {
  console.log('media fast path: native addon built');
} else {
  const reason = result.error?.message ?? (result.stderr || result.stdout).trim().split('\n').slice(-3).join(' | ');
  console.log(`media fast path: the native addon was not built, the server forwards with TypeScript (${reason})`);
}

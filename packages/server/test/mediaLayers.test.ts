/**
 * The media plane's layers, as its imports show them: core/ (RTP and congestion control) knows no
 * WebRTC stack and no sockets, sockets/ knows none of the werift adapters, and nothing imports in
 * a cycle.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const media = fileURLToPath(new URL('../src/media/', import.meta.url));

/** Each media file (relative to media/) and what it imports: other media files by path, packages by name. */
function mediaImports(): Map<string, string[]> {
  const files = readdirSync(media, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.ts'));
  return new Map(
    files.map((file) => {
      const source = readFileSync(join(media, file), 'utf8');
      const specifiers = [...source.matchAll(/\bfrom '([^']+)'/g)].map((m) => m[1]!);
      return [
        file,
        specifiers.map((s) => (s.startsWith('.') ? relative(media, join(media, dirname(file), s)).replace(/\.js$/, '.ts') : s)),
      ];
    }),
  );
}

test('media layers: core imports neither werift nor sockets/ nor werift/; sockets/ does not import werift/', () => {
  const broken: string[] = [];
  for (const [file, imports] of mediaImports()) {
    for (const imported of imports) {
      const forbidden =
        (file.startsWith('core/') && (imported === 'werift' || imported.startsWith('sockets/') || imported.startsWith('werift/'))) ||
        (file.startsWith('sockets/') && imported.startsWith('werift/'));
      if (forbidden) broken.push(`${file} imports ${imported}`);
    }
  }
  assert.deepEqual(broken, []);
});

test('media layers: no import cycles', () => {
  const imports = mediaImports();
  const done = new Set<string>();
  const cycles: string[] = [];
  const visit = (file: string, path: string[]): void => {
    if (path.includes(file)) return void cycles.push([...path.slice(path.indexOf(file)), file].join(' → '));
    if (done.has(file)) return;
    for (const imported of imports.get(file) ?? []) if (imports.has(imported)) visit(imported, [...path, file]);
    done.add(file);
  };
  for (const file of imports.keys()) visit(file, []);
  assert.deepEqual(cycles, []);
});

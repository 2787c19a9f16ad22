/**
 * A Redis for a one-machine sweep (`--local`): Debian's `redis-server` on loopback, on a free port, its data in
 * `<runs root>/sweeps/.redis` with an append-only file (fsync every write), so results outlive it and a restart
 * loses nothing. A second command while one is running finds it through `server.json` and shares it.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { atomicWrite, GantryError, mkdirp } from '@gantry/core';
import { ping } from './queue.js';

export function redisServerPath(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).concat(['/usr/bin', '/usr/sbin'])) {
    const p = path.join(dir, 'redis-server');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {}
  }
  return undefined;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  url: string;
  port: number;
  /** Present when this process started it. */
  child?: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `redis-server` on loopback with its data (AOF, fsync always) in `dir`; resolves when it answers. */
export async function startRedis(dir: string, port?: number): Promise<RedisServer> {
  const bin = redisServerPath();
  if (!bin) throw new GantryError('--local: redis-server is not installed (Debian: apt-get install redis-server)');
  mkdirp(dir);
  const p = port ?? (await freePort());
  const child = spawn(
    bin,
    [
      '--port',
      String(p),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--save',
      '',
      '--daemonize',
      'no',
      '--logfile',
      path.join(dir, 'redis.log'),
    ],
    // Its own process group: a Ctrl-C at the terminal stops the workers, which still need Redis to hand trials back.
    { stdio: 'ignore', detached: true },
  );
  const url = `redis://127.0.0.1:${p}`;
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) =>
      reject(new GantryError(`redis-server exited at once (code ${code}); see ${path.join(dir, 'redis.log')}`)),
    ),
  );
  const t0 = Date.now();
  for (;;) {
    try {
      await Promise.race([ping(url, 1000), exited]);
      break;
    } catch (err) {
      if (child.exitCode !== null || Date.now() - t0 > 15_000) {
        child.kill('SIGKILL');
        throw err instanceof GantryError && child.exitCode !== null
          ? err
          : new GantryError(`redis-server on port ${p} did not answer`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  exited.catch(() => {});
  return {
    url,
    port: p,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * This machine's sweep Redis under `root`: the one another command started (still running), or a new one that
 * this process stops at the end.
 */
export async function localRedis(root: string): Promise<RedisServer> {
  const dir = path.join(root, 'sweeps', '.redis');
  const record = path.join(dir, 'server.json');
  try {
    const s = JSON.parse(fs.readFileSync(record, 'utf8')) as { pid: number; port: number };
    if (Number.isInteger(s.pid) && alive(s.pid)) {
      const url = `redis://127.0.0.1:${s.port}`;
      await ping(url, 2000);
      return { url, port: s.port, stop: async () => {} };
    }
  } catch {
    // No record, or its server is gone: start one.
  }
  const server = await startRedis(dir);
  atomicWrite(record, JSON.stringify({ pid: server.child!.pid, port: server.port }));
  const stop = server.stop;
  return {
    ...server,
    stop: async () => {
      fs.rmSync(record, { force: true });
      await stop();
    },
  };
}

/** Whether redis-server can be started here (for tests: skipped with this reason otherwise). */
export function redisMissingReason(): string | undefined {
  const bin = redisServerPath();
  if (!bin) return 'redis-server is not installed';
  try {
    execFileSync(bin, ['--version'], { stdio: 'ignore' });
  } catch (err) {
    return `redis-server does not run (${(err as Error).message})`;
  }
  return undefined;
}

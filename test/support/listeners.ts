import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Who listens on a TCP port, for tests that check a server they stopped let its port go.
 *
 * Binding the port to see whether it is free cannot say whose it is: once a port is let go, any
 * process on the machine may take it (bind(0) hands out a port just freed like any other free one,
 * and a shared machine runs other jobs), and the probe then names a stranger's server "left
 * behind". So the test asks who listens: the sockets in LISTEN state on the port
 * (/proc/net/tcp and tcp6, state 0A), and the processes whose descriptors hold them. Where /proc
 * does not say (not Linux), it falls back to the probe.
 */

const LISTEN = '0A';

/** Inodes of the sockets listening on `port`, or undefined where /proc does not list them (not Linux). */
function listeningInodes(port: number): Set<string> | undefined {
  const inodes = new Set<string>();
  let read = false;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue; // no IPv6, or no /proc
    }
    read = true;
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== LISTEN) continue;
      if (parseInt(fields[1].split(':')[1], 16) === port) inodes.add(fields[9]);
    }
  }
  return read ? inodes : undefined;
}

/**
 * The pids of the processes this user can see that listen on `port` on this machine (none when
 * nothing listens, or only another user's process); undefined where /proc does not say (not
 * Linux): the caller then falls back to a probe.
 */
export function listenersOf(port: number): number[] | undefined {
  const inodes = listeningInodes(port);
  if (inodes === undefined) return undefined;
  if (inodes.size === 0) return [];
  const sockets = new Set([...inodes].map((inode) => `socket:[${inode}]`));
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue; // another user's process, or one that just ended
    }
    const holds = fds.some((fd) => {
      try {
        return sockets.has(readlinkSync(`/proc/${entry}/fd/${fd}`));
      } catch {
        return false;
      }
    });
    if (holds) pids.push(Number(entry));
  }
  return pids;
}

/** The process group of a process (field 5 of /proc/<pid>/stat), or undefined once it has ended. */
export function processGroupOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in brackets and may hold spaces: count from after it.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return undefined;
  }
}

/**
 * Whether a process that `ours` accepts listens on `port` (on 127.0.0.1 or every address). Where
 * /proc does not say who listens, whether the port can be bound on 127.0.0.1 (anyone's then).
 */
export async function portHeldBy(port: number, ours: (pid: number) => boolean): Promise<boolean> {
  const listeners = listenersOf(port);
  if (listeners !== undefined) return listeners.some(ours);
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(true));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(false)));
  });
}

import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 that plays network faults between the pipeline and an engine (SQS,
 * DynamoDB) living in the test process. The mode can change at any time and applies to open
 * connections too, as a real network fault would.
 */
export type ProxyMode =
  /** Forward both ways. */
  | { readonly kind: 'pass' }
  /**
   * The engine is gone: open connections are cut, new ones are cut as soon as accepted. (Closed,
   * not reset: on Node 20 `resetAndDestroy()` of a socket that is already ending could leave the
   * test process spinning at exit, seen in about one run in three.)
   */
  | { readonly kind: 'refuse' }
  /**
   * Packets vanish: nothing flows either way and new connections never reach the engine. Bytes are
   * held, as TCP would keep retransmitting them, and delivered if the fault clears while the
   * connection is still open; a connection a side gives up on is dropped with what it held.
   */
  | { readonly kind: 'blackhole' }
  /** Every chunk arrives this many milliseconds late (order kept). */
  | { readonly kind: 'delay'; readonly ms: number };

export interface TcpProxy {
  readonly port: number;
  /** `http://127.0.0.1:<port>`: what the pipeline is given as the engine's endpoint. */
  readonly endpoint: string;
  readonly mode: ProxyMode;
  setMode(mode: ProxyMode): void;
  /** Connections accepted, and how many of them `refuse` cut. */
  readonly stats: { accepted: number; cut: number };
  close(): Promise<void>;
}

interface Lane {
  readonly queue: { chunk: Buffer; readyAt: number }[];
  ended: boolean;
  timer?: NodeJS.Timeout;
}

/** Start a proxy to `127.0.0.1:<targetPort>`, initially passing traffic. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let mode: ProxyMode = { kind: 'pass' };
  const stats = { accepted: 0, cut: 0 };
  const links = new Set<{ pump(): void; cut(): void }>();

  const server = createServer({ allowHalfOpen: true }, (client) => {
    stats.accepted += 1;
    if (mode.kind === 'refuse') {
      stats.cut += 1;
      client.destroy();
      return;
    }
    let upstream: Socket | undefined;
    let upstreamReady = false;
    let closed = false;
    const toUpstream: Lane = { queue: [], ended: false };
    const toClient: Lane = { queue: [], ended: false };

    const close = () => {
      if (closed) return;
      closed = true;
      for (const lane of [toUpstream, toClient]) {
        clearTimeout(lane.timer);
        lane.queue.length = 0;
      }
      client.destroy();
      upstream?.destroy();
      links.delete(link);
    };

    const connect = () => {
      if (upstream) return;
      upstream = createConnection({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true });
      upstream.on('connect', () => {
        upstreamReady = true;
        link.pump();
      });
      upstream.on('data', (chunk: Buffer) => enqueue(toClient, chunk));
      upstream.on('end', () => {
        toClient.ended = true;
        link.pump();
      });
      // The engine refused or dropped us: the client sees the same.
      upstream.on('error', close);
      upstream.on('close', () => {
        toClient.ended = true;
        if (toClient.queue.length === 0) close();
        else link.pump();
      });
    };

    const drain = (lane: Lane, target: Socket | undefined) => {
      clearTimeout(lane.timer);
      lane.timer = undefined;
      if (closed || mode.kind === 'blackhole' || !target) return;
      const now = Date.now();
      while (lane.queue.length > 0 && lane.queue[0].readyAt <= now) target.write(lane.queue.shift()!.chunk);
      if (lane.queue.length > 0) lane.timer = setTimeout(() => drain(lane, target), lane.queue[0].readyAt - now);
      else if (lane.ended && !target.writableEnded) target.end();
    };

    const enqueue = (lane: Lane, chunk: Buffer) => {
      lane.queue.push({ chunk, readyAt: Date.now() + (mode.kind === 'delay' ? mode.ms : 0) });
      link.pump();
    };

    const link = {
      pump() {
        if (closed || mode.kind === 'blackhole') return;
        connect();
        if (upstreamReady) drain(toUpstream, upstream);
        drain(toClient, client);
      },
      cut() {
        stats.cut += 1;
        close();
      },
    };
    links.add(link);

    client.on('data', (chunk: Buffer) => enqueue(toUpstream, chunk));
    client.on('end', () => {
      toUpstream.ended = true;
      link.pump();
    });
    client.on('error', close);
    client.on('close', close);
    link.pump();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    get mode() {
      return mode;
    },
    stats,
    setMode(next) {
      mode = next;
      for (const link of [...links]) {
        if (mode.kind === 'refuse') link.cut();
        else link.pump();
      }
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const link of [...links]) link.cut();
      await closed;
    },
  };
}

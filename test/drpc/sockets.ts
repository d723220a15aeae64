import { once } from "node:events";
import net from "node:net";

/** Connects to a unix socket, resolving once connected (or rejecting with the dial error). */
export function dialUnix(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socketPath);
    c.once("connect", () => resolve(c));
    c.once("error", reject);
  });
}

/** A connected pair of loopback TCP sockets, with Nagle off on both. */
export async function tcpPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as net.AddressInfo).port;
  const accepted = once(server, "connection") as Promise<[net.Socket]>;
  const client = net.connect(port, "127.0.0.1");
  await once(client, "connect");
  const [peer] = await accepted;
  server.close();
  client.setNoDelay(true);
  peer.setNoDelay(true);
  return [client, peer];
}

/**
 * Writes `send` on a fresh unix-socket connection and resolves with everything
 * received once at least `bytes` bytes have arrived (or the server closed).
 */
export function exchange(socketPath: string, send: Buffer, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const conn = net.connect(socketPath);
    const got: Buffer[] = [];
    let n = 0;
    conn.on("data", (c: Buffer) => {
      got.push(c);
      n += c.length;
      if (n >= bytes) {
        conn.destroy();
        resolve(Buffer.concat(got));
      }
    });
    conn.on("close", () => resolve(Buffer.concat(got)));
    conn.on("error", reject);
    conn.write(send);
  });
}

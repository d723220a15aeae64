import type { HostCount } from "./boundary-store.js";

/** Requests per host, most first; picking a host filters the feed by it. */
export function HostCounts({ hosts, total, onPick }: { hosts: HostCount[]; total: number; onPick: (host: string) => void }) {
  return (
    <div class="hosts">
      <table class="host-table" aria-label="Requests per host">
        <thead>
          <tr>
            <th scope="col">Host</th>
            <th scope="col">Allowed</th>
            <th scope="col">Denied</th>
          </tr>
        </thead>
        <tbody>
          {hosts.map((h) => (
            <tr key={h.host} data-host={h.host}>
              <td>
                <button type="button" class="link" onClick={() => onPick(h.host)}>
                  {h.host}
                </button>
              </td>
              <td class="num">{h.allowed}</td>
              <td class="num">{h.denied}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {total > hosts.length && <p class="sub">{total - hosts.length} more hosts not listed.</p>}
    </div>
  );
}

import { useEffect, useState } from "preact/hooks";
import { BoundaryView } from "./boundary-view.js";
import { ChangesView } from "./changes-view.js";
import { LinkView } from "./link-view.js";
import { ProcessesView } from "./processes-view.js";
import { TasksView } from "./tasks-view.js";
import { TokenDialog } from "./token-dialog.js";
import { useAuth } from "./use-auth.js";

/** The views, in tab order; the hash (`#/boundary`) selects one. */
const VIEWS = {
  processes: { title: "Processes", render: () => <ProcessesView /> },
  changes: { title: "Changes", render: () => <ChangesView /> },
  boundary: { title: "Boundary", render: () => <BoundaryView /> },
  tasks: { title: "Tasks", render: () => <TasksView /> },
  link: { title: "Link", render: () => <LinkView /> },
} as const;

type ViewName = keyof typeof VIEWS;

function viewFromHash(): ViewName {
  const name = window.location.hash.replace(/^#\/?/, "");
  return name in VIEWS ? (name as ViewName) : "processes";
}

/** The page: a tab bar and the selected view; only that view holds streams open. */
export function App() {
  const [view, setView] = useState<ViewName>(viewFromHash);
  const { needed } = useAuth();
  useEffect(() => {
    const onHash = () => setView(viewFromHash());
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);
  return (
    <div class="layout">
      <header>
        <h1>agentd</h1>
        <nav aria-label="Views">
          {(Object.keys(VIEWS) as ViewName[]).map((name) => (
            <a key={name} href={`#/${name}`} aria-current={name === view ? "page" : undefined}>
              {VIEWS[name].title}
            </a>
          ))}
        </nav>
      </header>
      <main id={`view-${view}`}>{VIEWS[view].render()}</main>
      {needed && <TokenDialog />}
    </div>
  );
}

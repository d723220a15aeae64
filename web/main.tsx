import { render } from "preact";
import { App } from "./app.js";

const root = document.getElementById("app")!;
// Replace the static "Loading…" placeholder instead of rendering beside it.
root.textContent = "";
render(<App />, root);

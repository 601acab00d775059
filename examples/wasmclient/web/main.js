// Runs the Go client compiled to WebAssembly (app.wasm). The program reads
// its settings from this page's query string, ?url=<stream>&timeout=<Go
// duration>, and reports into globalThis.ssekitWasm and #events.
"use strict";

const url = new URLSearchParams(location.search).get("url") || "(none: add ?url=...)";
document.getElementById("url").textContent = url;

const go = new Go();
WebAssembly.instantiateStreaming(fetch("app.wasm"), go.importObject)
  .then((result) => go.run(result.instance))
  .catch((err) => {
    // A test polling ssekitWasm would otherwise only time out: say why.
    globalThis.ssekitWasmError = String(err);
    const state = document.getElementById("state");
    state.textContent = "failed to load: " + err;
    state.dataset.state = "failed";
  });

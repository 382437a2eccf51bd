#!/usr/bin/env python3
"""Opens a page in headless Chromium and says what a reader would see, as JSON on stdout.

    page_check.py URL SCREENSHOT.png [--offline] [--pdf FILE.pdf]

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: no port,
no extra package; Python's standard library only). The output holds:

- console: every console message of level error or warning, uncaught exceptions, and
  failed loads, as Chromium's DevTools would list them;
- requests: every URL the page asked for (the page itself first): a self-contained page
  asks for nothing else;
- page: what the DOM shows once loaded (the verdict, the facts, per feature section its
  name, badge, chart size and bars, and each number's text with its exact value);
- screenshot: the full page, written to SCREENSHOT.png.

--pdf prints the page (Chromium's print to PDF, A4, backgrounds on) to FILE.pdf.

--offline turns the network off (DevTools' offline emulation) before the page loads: a
page that needs the network then fails to load something, which `console` reports.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import base64

EXTRACT = r"""
(() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return { width: r.width, height: r.height }; };
  const numbers = (root) => Object.fromEntries([...root.querySelectorAll('[data-value]')].map(
    (e) => [e.className.baseVal !== undefined ? e.className.baseVal : e.className, { text: e.textContent, value: e.dataset.value }]));
  return JSON.stringify({
    title: document.title,
    verdict: (document.getElementById('verdict') || {}).textContent || null,
    facts: Object.fromEntries([...document.querySelectorAll('dl.facts dt')].map(
      (dt) => [dt.textContent, dt.nextElementSibling ? dt.nextElementSibling.textContent : null])),
    numbers: numbers(document.querySelector('dl.facts') || document.body),
    features: [...document.querySelectorAll('section.feature')].map((sec) => ({
      name: sec.dataset.feature,
      drifted: sec.dataset.drifted === 'true',
      heading: sec.querySelector('h2').textContent,
      badge: sec.querySelector('.badge').textContent,
      charts: [...sec.querySelectorAll('svg.chart')].map((svg) => Object.assign(box(svg), {
        bins: svg.querySelectorAll('g.bin').length,
        labelled: svg.getAttribute('aria-label'),
        axis_texts: svg.querySelectorAll('text').length,
      })),
      numbers: numbers(sec),
    })),
    models: [...document.querySelectorAll('tr[data-model]')].map((tr) => ({
      model: tr.dataset.model,
      state: tr.querySelector('.badge').textContent,
      cells: [...tr.querySelectorAll('td')].map((td) => td.textContent),
      links: [...tr.querySelectorAll('a')].map((a) => a.getAttribute('href')),
    })),
    links: [...document.querySelectorAll('a')].map((a) => a.getAttribute('href')),
    document: { width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight },
  });
})()
"""


class Pipe:
    def __init__(self, proc, write_fd, read_fd):
        self.proc, self.w, self.r = proc, write_fd, read_fd
        self.next_id, self.buf, self.events = 0, b"", []

    def _read_message(self):
        while b"\0" not in self.buf:
            chunk = os.read(self.r, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed its pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        while True:
            m = self._read_message()
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method, timeout_events=100000):
        for i, m in enumerate(self.events):
            if m.get("method") == method:
                del self.events[i]
                return m
        for _ in range(timeout_events):
            m = self._read_message()
            if m.get("method") == method:
                return m
            self.events.append(m)
        raise RuntimeError(f"no {method}")


def chromium():
    for name in (os.environ.get("DRIFTD_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    sys.exit("chromium not found (Debian's `chromium` package; scripts/test installs it)")


def main():
    url, shot = sys.argv[1], sys.argv[2]
    offline = "--offline" in sys.argv[3:]
    pdf = sys.argv[sys.argv.index("--pdf") + 1] if "--pdf" in sys.argv else None
    profile = tempfile.mkdtemp(prefix="driftd-chromium-")
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    # the protocol's pipe is the child's fds 3 (commands in) and 4 (answers out)
    proc = subprocess.Popen(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-extensions", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--metrics-recording-only", "--hide-scrollbars", "--mute-audio",
         f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
        pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=lambda: (os.dup2(to_child_r, 3), os.dup2(from_child_w, 4)),
    )
    os.close(to_child_r)
    os.close(from_child_w)
    pipe = Pipe(proc, to_child_w, from_child_r)
    try:
        targets = pipe.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        session = pipe.call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            pipe.call(f"{domain}.enable", session=session)
        pipe.call("Emulation.setDeviceMetricsOverride",
                  {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        if offline:
            pipe.call("Network.emulateNetworkConditions",
                      {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
                      session=session)
        nav = pipe.call("Page.navigate", {"url": url}, session=session)
        if nav.get("errorText"):
            raise RuntimeError(f"navigating to {url}: {nav['errorText']}")
        pipe.wait_event("Page.loadEventFired")
        # let late console messages arrive
        pipe.call("Runtime.evaluate", {"expression": "new Promise(r => setTimeout(r, 300))", "awaitPromise": True},
                  session=session)
        result = pipe.call("Runtime.evaluate", {"expression": EXTRACT, "returnByValue": True}, session=session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"extracting: {result['exceptionDetails']}")
        seen = json.loads(result["result"]["value"])
        size = seen["document"]
        pipe.call("Emulation.setDeviceMetricsOverride",
                  {"width": 1200, "height": max(900, int(size["height"])), "deviceScaleFactor": 1, "mobile": False},
                  session=session)
        png = pipe.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session)
        with open(shot, "wb") as f:
            f.write(base64.b64decode(png["data"]))
        if pdf:
            printed = pipe.call("Page.printToPDF", {"printBackground": True, "paperWidth": 8.27, "paperHeight": 11.69},
                                session=session)
            with open(pdf, "wb") as f:
                f.write(base64.b64decode(printed["data"]))
        console, requests = [], []
        for m in pipe.events:
            method, p = m.get("method"), m.get("params", {})
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                console.append(p["exceptionDetails"].get("text", "exception"))
            elif method == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
                console.append(f"{p['entry']['source']}: {p['entry']['text']} {p['entry'].get('url', '')}".strip())
            elif method == "Network.requestWillBeSent":
                requests.append(p["request"]["url"])
            elif method == "Network.loadingFailed":
                console.append(f"load failed: {p.get('errorText')} ({p.get('type')})")
        print(json.dumps({"console": console, "requests": requests, "page": seen}))
    finally:
        try:
            pipe.call("Browser.close")
        except Exception:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()

// Package browsertest holds the tests that drive a real headless Chromium, over the DevTools
// protocol, against the HTTP bridge: the browser client (/client/rtbus.js) and the demo page
// (/demo/) on every transport. It has no code of its own; it is a package of its own so that
// its tests, which start a browser, run in parallel with the other packages'.
//
// The tests need Chromium: Debian's chromium package (.ci/run installs it), or the binary
// that RTBUS_CHROMIUM names. Without one they fail, they do not skip.
package browsertest

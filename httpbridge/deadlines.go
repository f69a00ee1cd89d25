package httpbridge

import (
	"net/http"
	"strings"
	"time"

	"github.com/rtbus/rtbus/internal/httpserve"
)

// maxPollWait is the longest a long poll waits for a message (GATEWAY.md: ?wait= up to 55 s).
const maxPollWait = 55 * time.Second

// liftDeadlines frees stream requests from the server's body and write deadlines (an
// http.Server's ReadTimeout and WriteTimeout, as rtbusd sets them), which would otherwise end
// a stream once they pass, and gives a long poll its wait on top of them. Every other route
// keeps them. It goes by path so that each stream route, whichever transport, is covered
// before its handler runs (and before it hijacks the connection).
func liftDeadlines(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/public")
	switch {
	case p == "/sse", p == "/events", strings.HasPrefix(p, "/events/"), p == "/ws", strings.HasPrefix(p, "/ws/"):
		httpserve.Stream(w)
	case p == "/poll", strings.HasPrefix(p, "/poll/"):
		httpserve.Hold(w, r, maxPollWait)
	}
}

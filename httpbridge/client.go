package httpbridge

import (
	"net/http"

	"github.com/rtbus/rtbus/httpbridge/internal/webclient"
)

// clientRoutes serves the browser client (/client/rtbus.js) and the demo page (/demo/).
func clientRoutes(mux *http.ServeMux) {
	for _, f := range webclient.Files {
		mux.Handle(f.Route, methods(func(w http.ResponseWriter, r *http.Request) error {
			f.ServeHTTP(w, r)
			return nil
		}, http.MethodGet, http.MethodHead))
	}
	mux.Handle("/demo", http.RedirectHandler("/demo/", http.StatusMovedPermanently))
}

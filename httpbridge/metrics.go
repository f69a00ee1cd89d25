package httpbridge

import "net/http"

type metrics struct{}

func (m *metrics) handler() http.Handler { return nil }

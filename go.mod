module github.com/rtbus/rtbus

go 1.26.0

require (
	github.com/coder/websocket v1.8.15
	github.com/golang-jwt/jwt/v5 v5.3.1
	github.com/vmihailenco/msgpack/v5 v5.4.1
	github.com/yl2chen/cidranger v1.0.2
	golang.org/x/crypto v0.59.0
)

require github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect

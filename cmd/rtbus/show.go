package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/rtbus/rtbus/internal/mpcheck"
)

// msgpackJSON renders one MessagePack value that spans all of p as JSON, keeping the order
// of map keys. ok is false when p is not exactly one MessagePack value.
func msgpackJSON(p []byte) (string, bool) {
	if !mpcheck.Valid(p) { // lengths a peer declared must fit before the decoder trusts them
		return "", false
	}
	r := bytes.NewReader(p)
	d := msgpack.NewDecoder(r)
	var out bytes.Buffer
	if err := toJSON(d, &out, 0); err != nil || r.Len() != 0 {
		return "", false
	}
	return out.String(), true
}

func toJSON(d *msgpack.Decoder, out *bytes.Buffer, depth int) error {
	if depth > 100 {
		return fmt.Errorf("nested too deep")
	}
	c, err := d.PeekCode()
	if err != nil {
		return err
	}
	switch {
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err := d.DecodeMapLen()
		if err != nil {
			return err
		}
		out.WriteByte('{')
		for i := range n {
			if i > 0 {
				out.WriteString(", ")
			}
			k, err := d.DecodeInterface()
			if err != nil {
				return err
			}
			ks, ok := k.(string)
			if !ok {
				ks = fmt.Sprint(k)
			}
			kj, _ := json.Marshal(ks)
			out.Write(kj)
			out.WriteString(": ")
			if err := toJSON(d, out, depth+1); err != nil {
				return err
			}
		}
		out.WriteByte('}')
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err := d.DecodeArrayLen()
		if err != nil {
			return err
		}
		out.WriteByte('[')
		for i := range n {
			if i > 0 {
				out.WriteString(", ")
			}
			if err := toJSON(d, out, depth+1); err != nil {
				return err
			}
		}
		out.WriteByte(']')
	default:
		v, err := d.DecodeInterface()
		if err != nil {
			return err
		}
		if b, ok := v.([]byte); ok {
			v = hex.EncodeToString(b) // binary shown as hex rather than JSON's base64
		}
		j, err := json.Marshal(v)
		if err != nil {
			j, _ = json.Marshal(fmt.Sprint(v))
		}
		out.Write(j)
	}
	return nil
}

// showPayload renders a payload as format: "text", "hex", "msgpack" (as JSON), "auto"
// (printable UTF-8 as text; text with line breaks, such as a line piped in by echo, quoted so
// that a frame stays one line of output; else MessagePack where it decodes; else hex), or
// "result" (as auto, trying MessagePack first).
func showPayload(p []byte, format string) string {
	switch format {
	case "result": // an RPC result: MessagePack by convention
		if s, ok := msgpackJSON(p); ok {
			return s
		}
		format = "auto"
	case "text":
		return string(p)
	case "hex":
		return hex.EncodeToString(p)
	case "msgpack":
		if s, ok := msgpackJSON(p); ok {
			return s
		}
		return "(not MessagePack) " + hex.EncodeToString(p)
	}
	switch text, lines := printableText(p); {
	case text && !lines:
		return string(p)
	case text:
		return strconv.Quote(string(p))
	}
	if s, ok := msgpackJSON(p); ok {
		return s
	}
	return hex.EncodeToString(p)
}

// printableText reports whether p is UTF-8 text without control characters other than tabs
// and line breaks, and whether it has line breaks.
func printableText(p []byte) (text, lines bool) {
	if !utf8.Valid(p) {
		return false, false
	}
	for _, r := range string(p) {
		switch {
		case r == '\n' || r == '\r':
			lines = true
		case r < 0x20 && r != '\t' || r == 0x7f:
			return false, false
		}
	}
	return true, lines
}

// typedValue reads a command-line value as bool, integer, float, or else string; a value in
// double quotes is always a string.
func typedValue(s string) any {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return u
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "xXnN") {
		return f
	}
	return s
}

// encodeParams turns key=value arguments into a MessagePack map, keys in the given order;
// no arguments are no params.
func encodeParams(args []string) ([]byte, error) {
	if len(args) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	e.UseCompactInts(true)
	e.EncodeMapLen(len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Sprintf("parameter %q: want key=value", a)}
		}
		e.EncodeString(k)
		if err := e.Encode(typedValue(v)); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// payloadArg returns the payload named by a command-line argument: "-" reads standard input.
func payloadArg(arg string, stdin io.Reader) ([]byte, error) {
	if arg == "-" {
		return io.ReadAll(stdin)
	}
	return []byte(arg), nil
}

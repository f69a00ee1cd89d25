package ntpclock_test

import (
	"fmt"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/ntpclock"
)

func Example() {
	// With no server configured the clock is the local clock; with servers it starts on the
	// local clock and applies the measured offset once a server answers.
	c := ntpclock.New(ntpclock.Options{Servers: nil, Interval: time.Hour})
	defer c.Close()
	fmt.Println(c.Offset())
	// Output: 0s
}

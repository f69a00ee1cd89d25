package aaa_test

import (
	"fmt"
	"log"
	"net/netip"
	"strings"

	"github.com/rtbus/rtbus/aaa"
)

func Example() {
	m := aaa.NewMap()
	if err := m.Set("test", aaa.Policy{Hosts: []string{"127.0.0.0/8"}}); err != nil {
		log.Fatal(err)
	}
	err := m.Set("test2", aaa.Policy{
		P2P:     aaa.Rule{Allow: []string{"test"}},
		Publish: aaa.Rule{Allow: []string{"news/#"}},
	})
	if err != nil {
		log.Fatal(err)
	}

	test, _ := m.Get("test")
	fmt.Println("test from 127.0.0.1:", test.AllowHost(netip.MustParseAddr("127.0.0.1")))
	fmt.Println("test from 192.168.1.5:", test.AllowHost(netip.MustParseAddr("192.168.1.5")))

	test2, _ := m.Get("test2")
	fmt.Println("test2 to test%%1:", test2.AllowP2P("test%%1"))
	fmt.Println("test2 to other:", test2.AllowP2P("other"))
	fmt.Println("test2 publishes news/today:", test2.AllowPublish("news/today"))
	fmt.Println("test2 publishes sport/today:", test2.AllowPublish("sport/today"))

	_, ok := m.Get("stranger")
	fmt.Println("stranger may connect:", ok)
	// Output:
	// test from 127.0.0.1: true
	// test from 192.168.1.5: false
	// test2 to test%%1: true
	// test2 to other: false
	// test2 publishes news/today: true
	// test2 publishes sport/today: false
	// stranger may connect: false
}

func ExampleLoad() {
	m, err := aaa.Load(strings.NewReader(`{
		"test":  { "hosts": ["127.0.0.0/8"] },
		"test2": {
			"hosts": ["10.0.0.0/8", "::1"],
			"p2p": ["test"],
			"publish": ["news/#"],
			"subscribe": ["news/#", "unit/+/status"],
			"broadcast": [],
			"deny_p2p": false
		}
	}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Names())

	test2, _ := m.Get("test2")
	fmt.Println(test2.AllowHost(netip.MustParseAddr("::1")), test2.AllowHost(netip.MustParseAddr("127.0.0.1")))
	fmt.Println(test2.AllowSubscribe("unit/+/status"), test2.AllowSubscribe("unit/#"))
	fmt.Println(test2.AllowBroadcast("test"))

	_, err = aaa.Load(strings.NewReader(`{"test": {"hosts": ["10.0.0.0/33"]}}`))
	fmt.Println(err)
	// Output:
	// [test test2]
	// true false
	// true false
	// false
	// aaa: client "test": bad host "10.0.0.0/33": prefix length out of range
}

func ExampleRules_AllowSubscribe() {
	r, err := aaa.Compile(aaa.Policy{Subscribe: aaa.Rule{Allow: []string{"news/#"}}})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range []string{"news/a", "news/+/x", "news/#", "#", "news"} {
		fmt.Println(s, r.AllowSubscribe(s))
	}
	// Output:
	// news/a true
	// news/+/x true
	// news/# true
	// # false
	// news false
}

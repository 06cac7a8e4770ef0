package testnet

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	ma "github.com/multiformats/go-multiaddr"
)

// ErrPortInUse is returned by CheckPorts when a port a node needs is taken.
var ErrPortInUse = errors.New("port in use")

// PortInUseError names a port a node of the testnet needs and, when this
// machine says so, the process that holds it.
type PortInUseError struct {
	Node  string
	Port  int
	Proto string // "tcp" or "udp"
	What  string // "API" or "p2p"
	// Holder describes the process listening on the port ("pid 123
	// (verity)"), or is empty when it cannot be known.
	Holder string
}

func (e *PortInUseError) Error() string {
	s := fmt.Sprintf("%s's %s port %s/%d is already in use", e.Node, e.What, e.Proto, e.Port)
	if e.Holder != "" {
		s += " by " + e.Holder
	}
	return s
}

func (e *PortInUseError) Unwrap() error { return ErrPortInUse }

// CheckPorts checks that every port the testnet's nodes listen on (each
// p2p address, TCP or UDP, and each API address) is free, by binding it
// for a moment. It returns one PortInUseError per port taken, joined, so
// that nothing is started while another process (another testnet, say)
// holds a port: its nodes would answer in this testnet's place.
func CheckPorts(l *Layout) error {
	var errs []error
	for _, n := range l.Nodes {
		for _, p := range n.P2P {
			proto, host, port, ok := multiaddrPort(p)
			if !ok {
				continue
			}
			if err := tryBind(proto, host, port); err != nil {
				errs = append(errs, &PortInUseError{Node: n.Name, Port: port, Proto: proto, What: "p2p", Holder: portHolder(proto, port)})
			}
		}
		if host, port, ok := urlPort(n.API); ok {
			if err := tryBind("tcp", host, port); err != nil {
				errs = append(errs, &PortInUseError{Node: n.Name, Port: port, Proto: "tcp", What: "API", Holder: portHolder("tcp", port)})
			}
		}
	}
	return errors.Join(errs...)
}

// multiaddrPort is the protocol, host and port a p2p multiaddr listens on.
func multiaddrPort(s string) (proto, host string, port int, ok bool) {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return "", "", 0, false
	}
	host, err = a.ValueForProtocol(ma.P_IP4)
	if err != nil {
		if host, err = a.ValueForProtocol(ma.P_IP6); err != nil {
			return "", "", 0, false
		}
	}
	for _, pr := range []struct {
		code int
		name string
	}{{ma.P_TCP, "tcp"}, {ma.P_UDP, "udp"}} {
		if v, err := a.ValueForProtocol(pr.code); err == nil {
			port, err := strconv.Atoi(v)
			return pr.name, host, port, err == nil && port > 0
		}
	}
	return "", "", 0, false
}

// urlPort is the host and port an API URL names.
func urlPort(api string) (host string, port int, ok bool) {
	u, err := url.Parse(api)
	if err != nil {
		return "", 0, false
	}
	port, err = strconv.Atoi(u.Port())
	return u.Hostname(), port, err == nil && port > 0
}

// tryBind binds host:port as the node will, and lets it go.
func tryBind(proto, host string, port int) error {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if proto == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// portHolder finds the process listening on port from /proc (Linux, and
// only processes this user may look into); "" when it cannot tell.
func portHolder(proto string, port int) string {
	inodes := map[string]bool{}
	for _, table := range []string{proto, proto + "6"} {
		data, err := os.ReadFile("/proc/net/" + table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 {
				continue
			}
			i := strings.LastIndexByte(f[1], ':')
			if i < 0 {
				continue
			}
			p, err := strconv.ParseUint(f[1][i+1:], 16, 16)
			// 0A is LISTEN for TCP; a bound UDP socket has no state to
			// match.
			if err != nil || int(p) != port || (proto == "tcp" && f[3] != "0A") {
				continue
			}
			inodes["socket:["+f[9]+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return ""
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		target, err := os.Readlink(fd)
		if err != nil || !inodes[target] {
			continue
		}
		pid := strings.Split(fd, "/")[2]
		comm, _ := os.ReadFile("/proc/" + pid + "/comm")
		if name := strings.TrimSpace(string(comm)); name != "" {
			return fmt.Sprintf("pid %s (%s)", pid, name)
		}
		return "pid " + pid
	}
	return ""
}

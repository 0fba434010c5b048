package kafkacluster

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// DefaultPort is the Kafka port of a broker named without one.
const DefaultPort = "9092"

// IsURL reports whether s names a Kafka backbone (kafka://…), as
// kabuto serve --cluster tells it from nats://….
func IsURL(s string) bool {
	return len(s) >= len("kafka://") && strings.EqualFold(s[:len("kafka://")], "kafka://")
}

// ParseURL parses kafka://HOST[:PORT][,HOST[:PORT]…] into the brokers'
// HOST:PORT addresses (port 9092 when none is given). IPv6 hosts are
// written in brackets. No user, path, query or fragment is allowed: TLS
// and SASL are configured otherwise.
func ParseURL(s string) ([]string, error) {
	if !IsURL(s) {
		return nil, fmt.Errorf("kafka URL %q: want kafka://HOST:9092[,HOST:9092…]", s)
	}
	rest := s[len("kafka://"):]
	if strings.ContainsAny(rest, "/?#@ \t\r\n") {
		return nil, fmt.Errorf("kafka URL %q: want only kafka://HOST:PORT[,HOST:PORT…] (no user, path, query or spaces)", s)
	}
	if rest == "" {
		return nil, errors.New("kafka URL: no broker: want kafka://HOST:9092[,HOST:9092…]")
	}
	var out []string
	for b := range strings.SplitSeq(rest, ",") {
		addr, err := parseBroker(b)
		if err != nil {
			return nil, fmt.Errorf("kafka URL %q: %w", s, err)
		}
		out = append(out, addr)
	}
	return out, nil
}

func parseBroker(b string) (string, error) {
	if b == "" {
		return "", errors.New("an empty broker address")
	}
	host, port := b, DefaultPort
	if strings.HasPrefix(b, "[") || strings.Count(b, ":") == 1 {
		h, p, err := net.SplitHostPort(b)
		if err != nil {
			if !strings.HasPrefix(b, "[") || !strings.HasSuffix(b, "]") {
				return "", fmt.Errorf("broker %q: %v", b, err)
			}
			h, p = b[1:len(b)-1], DefaultPort
		}
		host, port = h, p
	} else if strings.Contains(b, ":") {
		return "", fmt.Errorf("broker %q: an IPv6 address needs brackets ([::1]:9092)", b)
	}
	if host == "" {
		return "", fmt.Errorf("broker %q: no host", b)
	}
	if strings.ContainsAny(host, "[]") {
		return "", fmt.Errorf("broker %q: bad host", b)
	}
	if strings.Contains(host, ":") {
		if net.ParseIP(host) == nil {
			return "", fmt.Errorf("broker %q: bad IPv6 address", b)
		}
	} else {
		for _, r := range host {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
				return "", fmt.Errorf("broker %q: bad host name", b)
			}
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return "", fmt.Errorf("broker %q: port %q: want 1 to 65535", b, port)
	}
	return net.JoinHostPort(host, port), nil
}

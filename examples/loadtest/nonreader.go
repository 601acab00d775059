package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"time"

	"github.com/google/uuid"
)

// nonReader is a subscriber that stopped reading: a raw TCP connection
// that sends the stream request and then never reads a byte, so the
// server's writes back up. (The client package always reads, hence the
// hand-written request.)
type nonReader struct {
	user string
	conn net.Conn
}

func dialNonReader(ctx context.Context, stream, tenant, topic string, rcvBuf int) (*nonReader, error) {
	u, err := url.Parse(stream)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("non-readers need an http:// URL, got %s", u.Scheme)
	}
	user := uuid.NewString()
	q := u.Query()
	q.Set("user", user)
	if tenant != "" {
		q.Set("tenant", tenant)
	}
	if topic != "" {
		q.Add("topic", topic)
	}
	u.RawQuery = q.Encode()
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	if rcvBuf > 0 {
		d.Control = setRcvBuf(rcvBuf)
	}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n", u.RequestURI(), u.Host)
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, err
	}
	return &nonReader{user: user, conn: conn}, nil
}

// drain reads what the server sent until the connection ends and reports
// whether the server closed it (EOF or reset) within d: a server that
// keeps the stream of a client that stopped reading open would make this
// read run into the deadline.
func (n *nonReader) drain(d time.Duration) (closed bool, read int64, err error) {
	_ = n.conn.SetReadDeadline(time.Now().Add(d))
	read, err = io.Copy(io.Discard, n.conn)
	switch {
	case err == nil: // io.Copy turns EOF into nil
		return true, read, nil
	case errors.Is(err, syscall.ECONNRESET):
		return true, read, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return false, read, nil
	}
	return false, read, err
}

func (n *nonReader) close() { n.conn.Close() }

// Command progress runs long jobs (a simulated CSV import) in the
// background and pushes their progress to the user who started them; its
// page draws a progress bar from the events.
//
//	go run ./examples/progress              # open http://127.0.0.1:8083
//
//	GET  /                      the page (embedded: web/index.html, web/app.js)
//	GET  /events?user=UUID      the user's stream
//	POST /imports?user=UUID     body: CSV "name,amount" lines -> 202 {"job": "1"}
//
// Events, to every connection of the user who started the job:
//
//	progress  {"job": "1", "percent": 42, "rows": 420, "total": 1000}   0..100, in order
//	done      {"job": "1", "rows": 1000, "sum": 123456}
//	failed    {"job": "1", "row": 437, "error": "amount \"x\" is not a number"}
//
// A page that reconnects is replayed what it missed (Last-Event-ID), so
// the bar catches up instead of freezing.
//
// Demo only: the user is named in the query string; a real service takes
// it from its session or token (see examples/jwt).
package main

import (
	"bufio"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/examples/internal/httpserve"
)

//go:embed web
var web embed.FS

// maxRows bounds one import, so a job always ends.
const maxRows = 100_000

// Progress, Done and Failed are the data of the three event types.
type Progress struct {
	Job     string `json:"job"`
	Percent int    `json:"percent"`
	Rows    int    `json:"rows"`
	Total   int    `json:"total"`
}

type Done struct {
	Job  string `json:"job"`
	Rows int    `json:"rows"`
	Sum  int64  `json:"sum"`
}

type Failed struct {
	Job   string `json:"job"`
	Row   int    `json:"row,omitempty"`
	Error string `json:"error"`
}

// app serves the page, the stream and the import endpoint, and runs the
// jobs. Close stops the jobs and waits for them.
type app struct {
	broker   *core.Broker
	rowDelay time.Duration // simulated work per row
	mux      *http.ServeMux
	ctx      context.Context
	cancel   context.CancelFunc
	jobs     sync.WaitGroup
	nextJob  atomic.Int64
}

// newServer returns the example's handler; rowDelay is the simulated cost
// of importing one row.
func newServer(broker *core.Broker, rowDelay time.Duration) *app {
	ctx, cancel := context.WithCancel(context.Background())
	a := &app{broker: broker, rowDelay: rowDelay, mux: http.NewServeMux(), ctx: ctx, cancel: cancel}
	page, _ := fs.Sub(web, "web")
	a.mux.Handle("/", http.FileServerFS(page))
	a.mux.Handle("/events", nethttp.Handler(broker))
	a.mux.HandleFunc("POST /imports", a.startImport)
	return a
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Close cancels running jobs (each ends with a failed event) and waits.
func (a *app) Close() {
	a.cancel()
	a.jobs.Wait()
}

func (a *app) startImport(w http.ResponseWriter, r *http.Request) {
	user, err := uuid.Parse(r.URL.Query().Get("user"))
	if err != nil || user == uuid.Nil {
		http.Error(w, "user must be a UUID", http.StatusBadRequest)
		return
	}
	var rows []string
	sc := bufio.NewScanner(http.MaxBytesReader(w, r.Body, 8<<20))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			rows = append(rows, line)
		}
	}
	switch {
	case sc.Err() != nil:
		http.Error(w, "reading the upload: "+sc.Err().Error(), http.StatusBadRequest)
		return
	case len(rows) == 0 || len(rows) > maxRows:
		http.Error(w, fmt.Sprintf("want 1 to %d CSV lines", maxRows), http.StatusBadRequest)
		return
	}
	if a.ctx.Err() != nil {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	job := strconv.FormatInt(a.nextJob.Add(1), 10)
	a.jobs.Add(1)
	go func() {
		defer a.jobs.Done()
		a.run(a.ctx, user, job, rows)
	}()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"job": job})
}

// run imports rows, pushing a progress event each time the percentage
// changes, then done or failed. Push errors (the broker closing) are
// ignored: the job's outcome does not depend on anyone watching.
func (a *app) run(ctx context.Context, user uuid.UUID, job string, rows []string) {
	push := func(eventType string, data any) { _ = a.broker.SendToUser(context.Background(), user, eventType, data) }
	total, sum, last := len(rows), int64(0), -1
	var tick *time.Ticker
	if a.rowDelay > 0 {
		tick = time.NewTicker(a.rowDelay)
		defer tick.Stop()
	}
	for i := 0; ; i++ {
		if pct := i * 100 / total; pct != last {
			last = pct
			push("progress", Progress{Job: job, Percent: pct, Rows: i, Total: total})
		}
		if i == total {
			break
		}
		if tick != nil {
			select {
			case <-tick.C:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			push("failed", Failed{Job: job, Error: "import cancelled: server shutting down"})
			return
		}
		amount, err := parseRow(rows[i])
		if err != nil {
			push("failed", Failed{Job: job, Row: i + 1, Error: err.Error()})
			return
		}
		sum += amount
	}
	push("done", Done{Job: job, Rows: total, Sum: sum})
}

// parseRow reads one "name,amount" line.
func parseRow(line string) (int64, error) {
	_, amount, ok := strings.Cut(line, ",")
	if !ok {
		return 0, errors.New(`want "name,amount"`)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(amount), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q is not a number", strings.TrimSpace(amount))
	}
	return n, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8083", "listen address")
	rowDelay := flag.Duration("row-delay", 10*time.Millisecond, "simulated work per imported row")
	flag.Parse()
	broker, err := core.New(core.Config{Authenticator: core.InsecureQueryAuthenticator()})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := newServer(broker, *rowDelay)
	err = httpserve.Run(ctx, *addr, a, broker)
	a.Close()
	if err != nil {
		log.Fatal(err)
	}
}

//go:build unix

package testdb

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Cluster is a PostgreSQL server of a test's own: its own data directory
// (initdb) and port, started from the server binaries found under
// /usr/lib/postgresql/*/bin (or $FLOWSTONE_PG_BIN), run as the postgres
// user when the test runs as root. Unlike the shared server of
// FLOWSTONE_TEST_DATABASE_URL, a test may crash it: Crash SIGKILLs it and
// Start brings it back through crash recovery.
type Cluster struct {
	// URL reaches the cluster's database as its superuser.
	URL string

	bin, dir, data string
	port           int
	cred           *syscall.Credential
	log            *os.File
	cmd            *exec.Cmd
	done           chan struct{}
}

// serverBin finds the directory of initdb and postgres: $FLOWSTONE_PG_BIN,
// else the newest /usr/lib/postgresql/*/bin holding both.
func serverBin() (string, bool) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "postgres", "pg_isready"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv("FLOWSTONE_PG_BIN"); dir != "" {
		return dir, has(dir)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if has(d) {
			return d, true
		}
	}
	return "", false
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// NewCluster initialises a cluster in a new temporary directory and starts
// it on a free port of 127.0.0.1, with extra server settings (name=value);
// it is stopped and removed when t ends. Without PostgreSQL's server
// binaries it returns false, for the caller to skip.
func NewCluster(t testing.TB, settings ...string) (*Cluster, bool) {
	t.Helper()
	bin, ok := serverBin()
	if !ok {
		return nil, false
	}
	c := &Cluster{bin: bin}
	if os.Geteuid() == 0 { // PostgreSQL refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, and no postgres user to run the server as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	dir, err := os.MkdirTemp("", "flowstone-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir, c.data = dir, filepath.Join(dir, "data")
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Mkdir(c.data, 0o700); err != nil {
		t.Fatal(err)
	}
	if c.cred != nil {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(c.data, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	if c.log, err = os.Create(filepath.Join(dir, "server.log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.log.Close() })
	init := c.command("initdb", "-D", c.data, "-U", "flowstone", "--auth=trust", "-E", "UTF8", "--no-sync")
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	c.port = freePort(t)
	conf := []string{"listen_addresses = '127.0.0.1'", fmt.Sprintf("port = %d", c.port),
		"unix_socket_directories = ''", "max_connections = 200", "shared_buffers = 32MB"}
	for _, s := range settings {
		conf = append(conf, s)
	}
	f, err := os.OpenFile(filepath.Join(c.data, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(strings.Join(conf, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	c.URL = fmt.Sprintf("postgres://flowstone@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	t.Cleanup(c.stop)
	c.Start(t)
	return c, true
}

// command runs one of the server's binaries as the server's user.
func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setpgid: true}
	cmd.Dir = c.dir
	return cmd
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start starts the server (after a crash: through crash recovery) and
// returns once it accepts connections.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	c.cmd = c.command("postgres", "-D", c.data)
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	done := make(chan struct{})
	c.done = done
	go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(done) }(c.cmd)
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if c.command("pg_isready", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(c.port)).Run() == nil {
			return
		}
		select {
		case <-done:
			// A postmaster started while the killed one's backends still
			// hold its shared memory refuses to start: try again.
			if time.Now().After(deadline) {
				t.Fatalf("postgres exited at start; see %s", c.log.Name())
			}
			time.Sleep(100 * time.Millisecond)
			c.cmd = c.command("postgres", "-D", c.data)
			c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
			if err := c.cmd.Start(); err != nil {
				t.Fatalf("start postgres: %v", err)
			}
			done = make(chan struct{})
			c.done = done
			go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(done) }(c.cmd)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres not accepting connections after 2 minutes; see %s", c.log.Name())
		}
	}
}

// Crash SIGKILLs the postmaster, the crash of a server: what its log had
// not yet written from memory is lost, and the next Start recovers from
// the log. With all, every one of its processes is killed at the same
// moment (the whole server lost at once); without, only the postmaster,
// and its backends, orphaned, end as they notice. It returns once the
// postmaster is gone.
func (c *Cluster) Crash(all bool) {
	pid := c.cmd.Process.Pid
	children := childPIDs(pid)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	if all {
		for _, p := range children {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
	<-c.done
}

// childPIDs lists the processes whose parent is pid (from /proc; none
// where there is no /proc).
func childPIDs(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after
		// its closing parenthesis.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}

// stop shuts the server down fast (its data is thrown away with it).
func (c *Cluster) stop() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGQUIT) // immediate shutdown
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.Crash(true)
	}
}

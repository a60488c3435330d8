package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// kboxBin is the path of the kbox binary that TestMain builds once for the
// whole package; tests only read it.
var kboxBin string

// repoRoot is the module root, the parent of this package's directory
// (go test runs a package's tests in its own directory).
var repoRoot = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Dir(wd)
}()

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kbox-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if kboxBin, err = buildKbox(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer sharedKafka.stop()
	return m.Run()
}

// buildKbox builds ./cmd/kbox into dir, with -race when this test binary
// has the race detector.
func buildKbox(dir string) (string, error) {
	bin := filepath.Join(dir, "kbox")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/kbox")
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = repoRoot
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go %v: %w\n%s", args, err, out)
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: built kbox (race=%v) in %s\n", raceEnabled, time.Since(start).Round(time.Millisecond))
	}
	return bin, nil
}

// goTool is the go command: go test puts the running toolchain's
// GOROOT/bin first in PATH.
func goTool() string { return "go" }

package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// maxSpool bounds what a manifest read from a pipe or device may spool: the
// largest workbook simbulk opens unpacks to 2 GiB, and a CSV manifest of
// ten million rows is well under it.
const maxSpool = 2 << 30

// LocalManifest returns a regular file holding the manifest at path, and a
// function that removes what it made. simbulk reads a manifest more than
// once (to fingerprint the run, then to load it; an XLSX needs random
// access), which a FIFO, a pipe, standard input ("-") or a device cannot
// give: such a manifest is read once into an owner-only temp file. Reading
// it honours ctx, so a signal ends a wait on a FIFO nobody writes to.
// Directories and sockets are refused.
func LocalManifest(ctx context.Context, path string) (string, func(), error) {
	noop := func() {}
	var src *os.File
	if path == "-" {
		src = os.Stdin
	} else {
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			return path, noop, nil // the reader says what is wrong, naming the file
		case fi.Mode().IsRegular():
			return path, noop, nil
		case fi.IsDir():
			return "", noop, fmt.Errorf("open manifest %s: is a directory; name the CSV or XLSX file", path)
		case fi.Mode()&fs.ModeSocket != 0:
			return "", noop, fmt.Errorf("open manifest %s: is a socket; save the manifest as a file or pipe it to simbulk - ", path)
		}
		if src, err = openStream(ctx, path); err != nil {
			return "", noop, err
		}
		defer src.Close()
	}
	tmp, err := os.CreateTemp("", "simbulk-manifest-*") // 0600: it holds customer data
	if err != nil {
		return "", noop, fmt.Errorf("spool manifest %s: %w", path, err)
	}
	cleanup := func() { os.Remove(tmp.Name()) }
	err = spool(ctx, tmp, src)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return "", noop, fmt.Errorf("read manifest %s: %w", path, err)
	}
	return tmp.Name(), cleanup, nil
}

// openStream opens a FIFO or device without letting the open itself block
// past ctx: opening a FIFO for reading waits for a writer.
func openStream(ctx context.Context, path string) (*os.File, error) {
	type opened struct {
		f   *os.File
		err error
	}
	done := make(chan opened, 1)
	go func() {
		f, err := os.Open(path)
		done <- opened{f, err}
	}()
	select {
	case o := <-done:
		if o.err != nil {
			return nil, fmt.Errorf("open manifest %s: %w", path, o.err)
		}
		return o.f, nil
	case <-ctx.Done():
		// The open goroutine stays blocked until a writer comes; the
		// command is ending anyway. Close whatever it opens then.
		go func() {
			if o := <-done; o.f != nil {
				o.f.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// spool copies src to dst, at most maxSpool bytes, stopping when ctx ends:
// it checks ctx between reads, and a deadline unblocks a read waiting on a
// pipe or FIFO that nobody writes to.
func spool(ctx context.Context, dst io.Writer, src *os.File) error {
	stop := context.AfterFunc(ctx, func() { _ = src.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 256<<10)
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := src.Read(buf)
		if n > 0 {
			if total += int64(n); total > maxSpool {
				return errors.New("more than 2 GiB arrived; split the manifest, or save it as a file")
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		switch {
		case err == io.EOF:
			return nil
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			return err
		}
	}
}

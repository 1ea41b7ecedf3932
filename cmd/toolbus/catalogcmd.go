package main

import (
	"context"
	"fmt"
	"io"

	"github.com/toolbus/toolbus/catalog"
)

func runCatalog(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) != 2 || args[0] != "validate" {
		return usageError{"usage: toolbus catalog validate FILE"}
	}
	cat, err := catalog.Load(args[1])
	if err != nil {
		fmt.Fprintln(stderr, err)
		return fmt.Errorf("catalog %s is invalid", args[1])
	}
	fmt.Fprintf(stdout, "%s: ok (%d upstreams, %d tools)\n", cat.File, len(cat.Upstreams), len(cat.Tools))
	return nil
}

module github.com/toolbus/toolbus/services/rest-worker

go 1.26

require github.com/toolbus/toolbus v0.0.0

replace github.com/toolbus/toolbus => ../..

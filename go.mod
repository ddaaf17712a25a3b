module github.com/schwabtools/token-refresh-sender

go 1.26.8

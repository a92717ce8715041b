from gan_lab.cli import run

run()

/* true.c - does nothing.  Start-up cost is measured from outside by bench/run:
 * wall time of the whole command (native exec, `rvisor do`, `runsc do`). */
int main(void) { return 0; }

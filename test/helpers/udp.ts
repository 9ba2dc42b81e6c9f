import { UdpBind } from '../../tun/udp.js';

/** The UdpBinds one test file opened, closed together in its afterAll (also after a failure). */
export class OpenBinds {
  private readonly binds: UdpBind[] = [];

  open(port: number, opts?: Parameters<typeof UdpBind.open>[1]): UdpBind {
    const b = UdpBind.open(port, opts);
    this.binds.push(b);
    return b;
  }

  closeAll(): void {
    for (const b of this.binds.splice(0)) b.close();
  }
}

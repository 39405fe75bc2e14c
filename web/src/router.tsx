// A small history router: links push a path, the back button pops one, and the app re-renders the page that matches.
import { createContext } from 'preact';
import type { ComponentChildren, JSX } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import { localPath } from './lib/route.js';

interface Location {
  readonly path: string;
  readonly search: URLSearchParams;
  navigate(to: string, options?: { replace?: boolean }): void;
}

const current = () => ({ path: window.location.pathname, search: new URLSearchParams(window.location.search) });

function go(to: string, replace = false): void {
  const target = localPath(to);
  if (replace) window.history.replaceState(null, '', target);
  else window.history.pushState(null, '', target);
  window.dispatchEvent(new PopStateEvent('popstate'));
}

const LocationContext = createContext<Location>({ ...current(), navigate: (to, o) => go(to, o?.replace) });

export function Router({ children }: { children: ComponentChildren }) {
  const [where, setWhere] = useState(current);
  useEffect(() => {
    const onPop = () => setWhere(current());
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);
  return <LocationContext.Provider value={{ ...where, navigate: (to, o) => go(to, o?.replace) }}>{children}</LocationContext.Provider>;
}

export const useLocation = (): Location => useContext(LocationContext);

/** An in-app link: a real href (open in a new tab works), navigation without a reload on a plain click. */
export function Link({ href, children, ...rest }: { href: string; children: ComponentChildren } & Omit<JSX.HTMLAttributes<HTMLAnchorElement>, 'href'>) {
  const { navigate } = useLocation();
  const onClick = (e: MouseEvent) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(href);
  };
  return <a href={href} onClick={onClick} {...rest}>{children}</a>;
}
